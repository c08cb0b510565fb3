#!/usr/bin/env bash
# Kiln's demo: the main job end to end on the embedded defaults (SQLite workspace, local files).
# Run it with `make demo`; it works in ./.kiln-demo and leaves your own workspace alone.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="$root/.venv/bin:$PATH"
kiln=kiln
work="$root/.kiln-demo"

rm -rf "$work"
mkdir -p "$work"
cd "$work"
export KILN_HOME="$work/home"

step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. Create a workspace (a folder with a SQLite registry) and point this project at it"
run "$kiln" workspace create demo --directory "$work/workspace"

step "2. The curated environments Kiln ships (immutable, cloneable)"
run "$kiln" env list

step "3. Define an environment from a conda file and register it: version 1"
cp "$here/environment.yml" environment.yml
cat environment.yml
run "$kiln" env register -d environment.yml
run "$kiln" env show demo-train

step "4. Register the same file again: unchanged, still version 1"
run "$kiln" env register -d environment.yml

step "5. Change the definition (add requests, pin another NumPy) and register: version 2"
sed -i 's/    - numpy==2.4.6/    - numpy==2.4.5\n    - requests==2.34.2/' environment.yml
run "$kiln" env register -d environment.yml
run "$kiln" env list --name demo-train

step "6. What changed between the two versions"
run "$kiln" env diff demo-train:1 demo-train:2

step "7. Save version 2 as an Azure ML v1 environment folder"
run "$kiln" env download -n demo-train -v 2 -d azureml-folder
run ls azureml-folder
cat azureml-folder/conda_dependencies.yml

step "8. Build version 2: resolve once into a lock, install with uv into Kiln's build cache"
run "$kiln" env build demo-train
run "$kiln" env lock demo-train

step "9. The environment's own Python and the package versions it got"
python_path=$("$kiln" env python demo-train)
printf '$ %s\n' "$python_path -c 'import sys, numpy, sklearn, requests; ...'"
"$python_path" -c 'import sys, numpy, sklearn, requests
print(f"Python {sys.version.split()[0]}: numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, requests {requests.__version__}")'

step "10. Build again: a cache hit, no resolve, no install"
start=$(date +%s%N)
run "$kiln" env build demo-train
echo "(whole command: $(( ($(date +%s%N) - start) / 1000000 )) ms)"
run "$kiln" cache list

step "11. Train: run demo/train.py in that environment (submitted, then watched from a second command)"
mkdir -p project && cp "$here/train.py" project/train.py
run_id=$("$kiln" run submit --detach --experiment iris --env demo-train --source-dir project train.py -- --n-estimators 50)
echo "\$ kiln run submit --detach --experiment iris --env demo-train --source-dir project train.py -- --n-estimators 50"
echo "$run_id"
run "$kiln" run logs "$run_id" --follow
run "$kiln" run show "$run_id"

step "12. Register the trained model from the run's outputs"
run "$kiln" model register outputs/model.pkl --name iris-classifier --run "$run_id" --tag accuracy=logged
run "$kiln" model list

step "13. Deploy the model as a local web service (score.py: init() and run(), as in Azure ML)"
cp "$here/score.py" project/score.py
run "$kiln" service deploy --name iris --model iris-classifier --entry-script score.py --source-dir project --env demo-train
run "$kiln" service list

step "14. Score two requests"
run "$kiln" service call iris --data '{"data": [[5.1, 3.5, 1.4, 0.2]]}'
uri=$("$kiln" -o json service show iris | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["scoringUri"])')
body='{"data": [[6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]}'
if command -v curl >/dev/null; then
  printf '$ curl -s -X POST %s -H "Content-Type: application/json" -d %s\n' "$uri" "'$body'"
  curl -s -X POST "$uri" -H "Content-Type: application/json" -d "$body"
else  # plain HTTP from Python when curl isn't installed
  printf '$ POST %s  %s\n' "$uri" "$body"
  python -c 'import sys, urllib.request as u; r = u.Request(sys.argv[1], data=sys.argv[2].encode(), headers={"Content-Type": "application/json"}); print(u.urlopen(r).read().decode(), end="")' "$uri" "$body"
fi
echo

step "15. The environment as an OCI image: one layer per package, written from the locked build (no Docker needed)"
run "$kiln" image build demo-train --tar demo-train-image.tar
run "$kiln" image list
ls -l demo-train-image.tar

step "16. The studio: everything above in a web UI (started read-only here, looked at once, stopped)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "\$ kiln studio --port $port --read-only &"
"$kiln" studio --port "$port" --read-only >studio.log 2>&1 &
studio_pid=$!
trap 'kill "$studio_pid" 2>/dev/null || true' EXIT
python3 - "$port" <<'PY'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(base + "/api/environments", timeout=2).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the studio did not answer within 30 s: see studio.log")
        time.sleep(0.2)
for page in ("/environments", "/runs", "/models", "/services", "/cache"):
    with urllib.request.urlopen(base + page, timeout=10) as r:
        html = r.read().decode()
    title = html.split("<title>", 1)[-1].split("</title>", 1)[0].strip() if "<title>" in html else "?"
    print(f"GET {base}{page} -> {r.status}, {len(html):,} bytes: {title}")
PY
kill "$studio_pid"
wait "$studio_pid" 2>/dev/null || true
trap - EXIT
echo "(run 'kiln studio' in this folder and open http://127.0.0.1:8790/ to browse it yourself)"

step "17. Delete the service"
run "$kiln" service delete iris

step "Done: the workspace is in $work/workspace, builds in $KILN_HOME/cache"
