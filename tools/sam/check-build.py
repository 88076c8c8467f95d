"""After `sam build`: every function of template.yaml has its bootstrap under .aws-sam/build/, an
executable of the architecture asked for (`check-build.py arm64|x86_64`): what deploys is what
was built for it."""
import os
import re
import sys

# ELF e_machine: what a bootstrap runs on.
MACHINES = {"arm64": 0xB7, "x86_64": 0x3E}
architecture = sys.argv[1] if len(sys.argv) > 1 else "x86_64"
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
template = open(os.path.join(root, "template.yaml"), encoding="utf-8").read()
functions = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function", template, re.M)
missing, wrong = [], []
for f in functions:
    path = os.path.join(root, ".aws-sam", "build", f, "bootstrap")
    if not os.path.isfile(path):
        missing.append(f)
        continue
    with open(path, "rb") as elf:
        head = elf.read(20)
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != MACHINES[architecture]:
        wrong.append(f)
if not functions or missing:
    sys.exit(f"sam build left no bootstrap for: {', '.join(missing) or 'any function (none found)'}")
if wrong:
    sys.exit(f"sam build left a bootstrap that is not {architecture} for: {', '.join(wrong)}")
print(f"sam build ({architecture}): {len(functions)} functions, each with its {architecture} bootstrap")
