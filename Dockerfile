# syntax=docker/dockerfile:1
# ferry's container image: the ferry binary with the git, helm and kustomize it runs.
# The workshop builds it inside its VM and imports it into k3s's containerd
# (workshop/vm/bootstrap.sh); .github/workflows/release.yml publishes it on tags.
#
#   docker build -t ferry:0.1.0 .

# helm and kustomize at the versions ferry is tested with (scripts/install-tools.sh), built from
# their Go modules.
FROM golang:1.26-bookworm AS tools
ARG HELM_VERSION=v3.22.0
ARG KUSTOMIZE_VERSION=v5.8.2
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
RUN go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
      "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" \
 && go install -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ferry \
 && install -m 0755 target/release/ferry /usr/local/bin/ferry

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=tools /go/bin/helm /go/bin/kustomize /usr/local/bin/
COPY --from=build /usr/local/bin/ferry /usr/local/bin/ferry
# The user `ferry install --with-controller` expects: not root, no shell login, a writable HOME
# only where a volume is mounted (/var/cache/ferry, /tmp).
RUN useradd --uid 65532 --user-group --home-dir /var/cache/ferry --no-create-home --shell /usr/sbin/nologin ferry
USER 65532:65532
ENV FERRY_HELM=/usr/local/bin/helm FERRY_KUSTOMIZE=/usr/local/bin/kustomize
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["--help"]
