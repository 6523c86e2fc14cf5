#!/usr/bin/env bash
# Starts the bump-image pipeline (exercise 04) in the workshop VM and follows it to the end:
# a PipelineRun that clones your fork (the repository of the root app), validates the manifests,
# sets IMAGE's tag to TAG in PATH and pushes the commit. ferry then syncs it.
#
#   workshop/scripts/run-pipeline.sh IMAGE TAG [PATH]
#   workshop/scripts/run-pipeline.sh ghcr.io/stefanprodan/podinfo 6.9.0
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 IMAGE TAG [PATH]   (PATH defaults to workshop/workloads/podinfo)" >&2
  exit 2
fi
image=$1 tag=$2 path=${3:-workshop/workloads/podinfo}

repo=$(kubectl get application root -n ferry -o jsonpath='{.spec.source.repoURL}')
if [[ -z $repo ]]; then
  echo "run-pipeline: no root application in namespace ferry; run the bootstrap first (exercise 01)" >&2
  exit 1
fi
if ! kubectl get secret git-push -n pipelines >/dev/null 2>&1; then
  echo "run-pipeline: the Secret pipelines/git-push with your token is missing (exercise 04, step 3)" >&2
  exit 1
fi

run=$(kubectl create -n pipelines -o name -f - <<YAML
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: bump-image-
spec:
  pipelineRef:
    name: bump-image
  params:
    - {name: repo-url, value: "$repo"}
    - {name: path, value: "$path"}
    - {name: image, value: "$image"}
    - {name: tag, value: "$tag"}
  workspaces:
    - name: source
      emptyDir: {}
YAML
)
echo "started $run: $image:$tag in $path of $repo"
start=$SECONDS
while true; do
  reason=$(kubectl get -n pipelines "$run" -o jsonpath='{.status.conditions[?(@.type=="Succeeded")].reason}')
  status=$(kubectl get -n pipelines "$run" -o jsonpath='{.status.conditions[?(@.type=="Succeeded")].status}')
  case $status in
    True) break ;;
    False)
      echo "$run failed ($reason). Its steps' logs:" >&2
      kubectl logs -n pipelines -l "tekton.dev/pipelineRun=${run#*/}" --all-containers --prefix >&2 || true
      exit 1
      ;;
  esac
  if ((SECONDS - start > 600)); then
    echo "$run did not finish within 10 minutes (last reason: ${reason:-none})" >&2
    exit 1
  fi
  echo "  ${reason:-Pending} ($((SECONDS - start))s)"
  sleep 5
done
kubectl logs -n pipelines -l "tekton.dev/pipelineRun=${run#*/}" --all-containers --prefix
echo "$run succeeded in $((SECONDS - start))s"
