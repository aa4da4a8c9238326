#!/usr/bin/env bash
set -euo pipefail

# Deploy the API to the staging cluster.
export DOCKER_REGISTRY=registry.acme.example
export GITLAB_TOKEN=glpat-VMNYBBQYPN9cV2xeXKFp
export DIGITALOCEAN_ACCESS_TOKEN="dop_v1_56bf0380dbb3ab75c72990e57d71ab858f6fb17cbe98ffb51e7c55f924993bf7"
export KUBECONFIG="${HOME}/.kube/staging"
export IMAGE_TAG="${CI_COMMIT_SHORT_SHA:-$(git rev-parse --short HEAD)}"

echo "logging in to ${DOCKER_REGISTRY}"
docker login "${DOCKER_REGISTRY}" -u deploy-bot -p 'Dock3r!Deploy#991'

docker build -t "${DOCKER_REGISTRY}/api:${IMAGE_TAG}" .
docker push "${DOCKER_REGISTRY}/api:${IMAGE_TAG}"

curl -sf -X POST \
  -H "PRIVATE-TOKEN: ${GITLAB_TOKEN}" \
  "https://gitlab.acme.example/api/v4/projects/42/deployments" \
  -d "environment=staging&sha=${IMAGE_TAG}&ref=main&tag=false&status=running"

helm upgrade --install api ./chart --set image.tag="${IMAGE_TAG}" --wait --timeout 5m
