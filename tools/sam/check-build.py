"""After `sam build`: every function of template.yaml has its bootstrap under .aws-sam/build/."""
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
template = open(os.path.join(root, "template.yaml"), encoding="utf-8").read()
functions = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function", template, re.M)
missing = [f for f in functions if not os.path.isfile(os.path.join(root, ".aws-sam", "build", f, "bootstrap"))]
if not functions or missing:
    sys.exit(f"sam build left no bootstrap for: {', '.join(missing) or 'any function (none found)'}")
print(f"sam build: {len(functions)} functions, each with its bootstrap")
