"""Checks wire samples against the publishing service's official Python SDK (zernio-sdk, pinned in
requirements-dev.txt): the simulator's answers and webhook payloads against the SDK's response
models, and the client's request bodies against the fields the SDK's create methods send.

Usage: check.py <folder>. Each *.json in the folder is {"kind": ..., "name": ..., "body": ...}:
  kind "response": body must validate as the model `name` (late.models);
  kind "request":  every field of body must be one the SDK method `name` sends ("posts.create",
                   "profiles.create"), its platforms and media items fields of their models.
Prints one line per sample and exits 1 if any is rejected.
"""

import inspect
import json
import pathlib
import sys

import late.models as models
from late.resources.posts import PostsResource
from late.resources.profiles import ProfilesResource


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def sent_fields(method) -> set[str]:
    """The body fields an SDK create method can send: its keyword parameters, camelCased."""
    parameters = inspect.signature(method).parameters
    return {camel(p) for p in parameters if p != "self"}


def model_fields(model) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


REQUESTS = {
    "posts.create": (
        sent_fields(PostsResource.create),
        {"platforms": models.PlatformTarget, "mediaItems": models.MediaItem},
    ),
    # `externalId` is newer than the pinned SDK's create method: checked against the vendor's
    # OpenAPI description 1.444.0 (publisher-zernio.md, "Amended December 2026") instead.
    "profiles.create": (sent_fields(ProfilesResource.create) | {"externalId"}, {}),
}


def check_request(name: str, body: dict) -> list[str]:
    allowed, nested = REQUESTS[name]
    problems = [f"field {k!r} is not sent by the SDK's {name}" for k in body if k not in allowed]
    for field, model in nested.items():
        for n, item in enumerate(body.get(field) or []):
            known = model_fields(model)
            problems += [f"{field}[{n}].{k} is not a field of {model.__name__}" for k in item if k not in known]
            try:
                model.model_validate(item)
            except Exception as e:  # noqa: BLE001 - the SDK's own validation error, printed
                problems.append(f"{field}[{n}] rejected by {model.__name__}: {e}")
    return problems


def check_response(name: str, body) -> list[str]:
    model = getattr(models, name)
    try:
        model.model_validate(body)
    except Exception as e:  # noqa: BLE001
        return [f"rejected by {name}: {e}"]
    return []


def main(folder: str) -> int:
    samples = sorted(pathlib.Path(folder).glob("*.json"))
    if not samples:
        print(f"no samples in {folder}")
        return 1
    failed = 0
    for path in samples:
        sample = json.loads(path.read_text())
        check = check_request if sample["kind"] == "request" else check_response
        problems = check(sample["name"], sample["body"])
        status = "ok" if not problems else "REJECTED"
        print(f"{path.name}: {sample['kind']} {sample['name']}: {status}")
        for p in problems:
            print(f"    {p}")
        failed += bool(problems)
    print(f"{len(samples) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
