"""A rehearsal of the whole deploy without an account (production.md, section 8), run by make test.

For two stack names and the three sized parameter sets (deploy/sizes/*.params), the template is
rendered by SAM's own translator into the CloudFormation a deploy would create, then:
- every Ref, GetAtt, Sub reference and condition resolves;
- the two stacks have no physical name in common (every named resource, and the secret names the
  functions are given, derive from the stack's name), so `sam delete` of one touches nothing of the
  other: CloudFormation deletes only what its own stack created;
- cfn-lint passes on each rendered template, and checkov on each size's (with .checkov.yaml);
- each function's deployed zip (target/lambda-arm64/) holds an arm64 bootstrap;
- each size's reserved concurrency and the account quota it needs are printed.
A failure exits non-zero, naming what failed.
"""
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACKS = ["stacc-social-staging", "stacc-social-production"]
SIZES = ["small", "medium", "large"]
# What a deploy must give (no default): the rehearsal's stand-ins.
REQUIRED = {
    "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Rehearsal",
    "JwtAudience": "rehearsal-client",
    "ConnectRedirectOrigins": "https://app.thestacc.com",
    "PublisherApiKeyName": "stacc-social/publisher-api-key",
}
PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None, "AWS::NotificationARNs": []}
# The properties that name a resource physically, by type.
NAME_PROPERTIES = {
    "AWS::Events::EventBus": "Name", "AWS::SNS::Topic": "TopicName", "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName", "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Dashboard": "DashboardName", "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Lambda::Function": "FunctionName", "AWS::IAM::Role": "RoleName", "AWS::ApiGatewayV2::Api": "Name",
    "AWS::Scheduler::Schedule": "Name", "AWS::Events::Rule": "Name", "AWS::SecretsManager::Secret": "Name",
}
# Environment variables that name something outside the stack, which must be the stack's own.
OWN_NAMES = ["WEBHOOK_SECRETS_SECRET_ID", "EVENT_BUS_NAME"]

problems = []


class NoManagedPolicies:
    """SAM's translator asks for managed policy ARNs by name only when a template names one; this
    template names none (tests/tests/iam.rs), so nothing is looked up."""

    def load(self):
        return {}


def params_of(size):
    values = {}
    for line in open(os.path.join(ROOT, "deploy", "sizes", f"{size}.params"), encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def render(stack, size):
    template = yaml_parse(open(os.path.join(ROOT, "template.yaml"), encoding="utf-8").read())
    values = {**REQUIRED, **params_of(size), "Architecture": "arm64"}
    # As `sam deploy` packages it: each function's code uploaded to the artefact bucket.
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://rehearsal-artifacts/{logical}.zip"
    rendered = transform(template, values, NoManagedPolicies())
    defaults = {k: str(v.get("Default")) if not isinstance(v.get("Default"), list) else v["Default"]
                for k, v in rendered.get("Parameters", {}).items() if "Default" in v}
    return rendered, {**defaults, **values, **PSEUDO, "AWS::StackName": stack, "AWS::StackId": f"arn:{stack}"}


class Unresolved(Exception):
    pass


def resolve(value, refs, template, conditions):
    """A value as CloudFormation would resolve it, as far as names need (attributes of resources
    other stacks cannot share are opaque but unique to the stack)."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            if arg in refs:
                return refs[arg]
            if arg in template["Resources"]:
                return f"{refs['AWS::StackName']}-{arg}-GENERATED"
            raise Unresolved(f"Ref {arg}")
        if fn == "Fn::GetAtt":
            name = arg[0] if isinstance(arg, list) else arg.split(".")[0]
            if name not in template["Resources"]:
                raise Unresolved(f"GetAtt {arg}")
            return f"{refs['AWS::StackName']}-{name}-ATTRIBUTE"
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], {k: resolve(v, refs, template, conditions)
                                                                            for k, v in arg[1].items()})
            def one(m):
                name = m.group(1)
                if name in local:
                    return str(local[name])
                if "." in name:
                    return str(resolve({"Fn::GetAtt": name.split(".", 1)}, refs, template, conditions))
                return str(resolve({"Ref": name}, refs, template, conditions))
            return re.sub(r"\$\{([^!}][^}]*)\}", one, text)
        if fn == "Fn::If":
            return resolve(arg[1] if condition(arg[0], refs, template, conditions) else arg[2], refs, template, conditions)
        if fn == "Fn::Join":
            return arg[0].join(str(resolve(v, refs, template, conditions)) for v in resolve(arg[1], refs, template, conditions))
        if fn == "Fn::Select":
            return resolve(arg[1], refs, template, conditions)[int(arg[0])]
        if fn == "Fn::Split":
            return str(resolve(arg[1], refs, template, conditions)).split(arg[0])
        if fn == "Fn::FindInMap":
            return template["Mappings"][arg[0]][resolve(arg[1], refs, template, conditions)][arg[2]]
        if fn == "Fn::GetAZs":
            return ["a", "b"]
        if fn.startswith("Fn::") or fn == "Condition":
            raise Unresolved(fn)
    if isinstance(value, list):
        return [resolve(v, refs, template, conditions) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, refs, template, conditions) for k, v in value.items()}
    return value


def condition(name, refs, template, conditions):
    if name not in conditions:
        if name not in template.get("Conditions", {}):
            raise Unresolved(f"condition {name}")
        conditions[name] = evaluate(template["Conditions"][name], refs, template, conditions)
    return conditions[name]


def evaluate(c, refs, template, conditions):
    (fn, arg), = c.items()
    if fn == "Fn::Equals":
        a, b = (resolve(x, refs, template, conditions) for x in arg)
        return str(a) == str(b)
    if fn == "Fn::Not":
        return not evaluate(arg[0], refs, template, conditions)
    if fn == "Fn::And":
        return all(evaluate(x, refs, template, conditions) for x in arg)
    if fn == "Fn::Or":
        return any(evaluate(x, refs, template, conditions) for x in arg)
    if fn == "Condition":
        return condition(arg, refs, template, conditions)
    raise Unresolved(fn)


def walk_resolving(value, refs, template, conditions, where):
    """Every intrinsic in the rendered template resolves."""
    try:
        resolve(value, refs, template, conditions)
    except Unresolved as e:
        problems.append(f"{where}: {e} does not resolve")
    except (KeyError, IndexError, TypeError) as e:
        problems.append(f"{where}: {e!r} does not resolve")


def names(template, refs):
    conditions = {}
    found = {}
    for logical, resource in template["Resources"].items():
        if "Condition" in resource and not condition(resource["Condition"], refs, template, conditions):
            continue
        walk_resolving(resource.get("Properties", {}), refs, template, conditions, logical)
        prop = NAME_PROPERTIES.get(resource["Type"])
        properties = resource.get("Properties", {})
        if prop and prop in properties:
            found[f"{resource['Type']} {resolve(properties[prop], refs, template, conditions)}"] = logical
        variables = properties.get("Environment", {}).get("Variables", {})
        for variable in OWN_NAMES:
            if variable in variables:
                found[f"{variable} {resolve(variables[variable], refs, template, conditions)}"] = logical
    for output, body in template.get("Outputs", {}).items():
        walk_resolving(body.get("Value"), refs, template, conditions, f"output {output}")
    return found, conditions


def shared_names(a, b):
    return sorted(set(a) & set(b))


def self_check():
    """The detector catches what it is there to catch: two stacks with one fixed name."""
    fixed = {"Resources": {"Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "fixed"}}}}
    a, _ = names(fixed, {"AWS::StackName": "a"})
    b, _ = names(fixed, {"AWS::StackName": "b"})
    assert shared_names(a, b) == ["AWS::Events::EventBus fixed"], "the rehearsal's own check is broken"


def arm64_zips():
    functions = re.findall(r"^FUNCTIONS := (.+)$", open(os.path.join(ROOT, "Makefile"), encoding="utf-8").read(), re.M)[0].split()
    for function in functions:
        path = os.path.join(ROOT, "target", "lambda-arm64", function, "bootstrap.zip")
        try:
            with zipfile.ZipFile(path) as z:
                head = z.open("bootstrap").read(20)
        except (OSError, KeyError) as e:
            problems.append(f"{function}: no arm64 bootstrap.zip ({e}); make build ARCH=--arm64 makes it")
            continue
        if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != 0xB7:
            problems.append(f"{function}: {path} holds a bootstrap that is not arm64")
    return functions


def lint(path, checkov):
    result = subprocess.run([os.path.join(ROOT, ".venv", "bin", "cfn-lint"), path], capture_output=True, text=True)
    if result.returncode != 0:
        problems.append(f"cfn-lint on {os.path.basename(path)}:\n{result.stdout}{result.stderr}")
    if checkov:
        result = subprocess.run([os.path.join(ROOT, ".venv", "checkov", "bin", "checkov"), "--config-file",
                                 os.path.join(ROOT, ".checkov.yaml"), "--file", path],
                                capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            problems.append(f"checkov on {os.path.basename(path)}:\n{result.stdout[-3000:]}{result.stderr[-1000:]}")


def reservations(template, refs, conditions):
    total = 0
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            value = resource.get("Properties", {}).get("ReservedConcurrentExecutions")
            if value is not None:
                resolved = resolve(value, refs, template, conditions)
                total += int(resolved) if resolved is not None else 0
    return total


def main():
    # The translator reads a region for its pseudo-parameters; nothing is asked of AWS.
    os.environ["AWS_DEFAULT_REGION"] = PSEUDO["AWS::Region"]
    os.environ.pop("AWS_REGION", None)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    self_check()
    out = os.path.join(ROOT, "target", "rehearsal")
    os.makedirs(out, exist_ok=True)
    functions = arm64_zips()
    summary = []
    for size in SIZES:
        rendered = {}
        for stack in STACKS:
            template, refs = render(stack, size)
            found, conditions = names(template, refs)
            rendered[stack] = found
            path = os.path.join(out, f"{stack}-{size}.json")
            json.dump(template, open(path, "w", encoding="utf-8"), indent=1)
            lint(path, checkov=stack == STACKS[0])
            if stack == STACKS[0]:
                reserved = reservations(template, refs, conditions)
                header = open(os.path.join(ROOT, "deploy", "sizes", f"{size}.params"), encoding="utf-8").read()
                quota = re.search(r"quota must be at least (\d+)", header)
                summary.append((size, reserved, quota.group(1) if quota else "?"))
                stated = re.search(r"Reserves (\d+) concurrent", header)
                if not stated or int(stated.group(1)) != reserved:
                    problems.append(f"deploy/sizes/{size}.params says it reserves {stated and stated.group(1)}, "
                                    f"the rendered template reserves {reserved}")
        common = shared_names(*rendered.values())
        if common:
            problems.append(f"{size}: {' and '.join(STACKS)} share physical names: {', '.join(common)}")
        elif not rendered[STACKS[0]]:
            problems.append(f"{size}: no physical name found at all: the rehearsal looked at nothing")
    print(f"rehearsal: rendered by SAM's translator for {', '.join(STACKS)} x {', '.join(SIZES)}; "
          f"every reference resolves, no physical name in common; cfn-lint and checkov pass; "
          f"{len(functions)} arm64 bootstraps")
    for size, reserved, quota in summary:
        print(f"rehearsal: {size}: {reserved} concurrent executions reserved; "
              f"ask AWS for a Lambda concurrency quota of at least {quota} before the first deploy")
    if problems:
        sys.exit("rehearsal failed:\n" + "\n".join(problems))


if __name__ == "__main__":
    main()
