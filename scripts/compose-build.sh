#!/usr/bin/env bash
# Builds the NoKV images without pulling anything: static (CGO_ENABLED=0)
# binaries built on this machine, each copied into its own FROM scratch image
# (compose/Dockerfile.prebuilt, the same stages as compose/Dockerfile).
#
#   scripts/compose-build.sh                      nokv-redis, nokv-pd, nokv-store :dev and :<version>
#   REGISTRY=registry.example.com/nokv scripts/compose-build.sh
#                                                 ... and pushes <REGISTRY>/nokv-*:<version> and :<tag>
#   docker-compose -f compose/docker-compose.yml up -d        then starts them without building
#
# Environment: NOKV_TAG (default dev, the tag compose uses), NOKV_VERSION
# (default: git describe), NOKV_REVISION (default: the commit), REGISTRY.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${NOKV_TAG:-dev}
version=${NOKV_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=${NOKV_REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
registry=${REGISTRY:-}
registry=${registry%/}
services=(nokv-redis:gateway nokv-pd:pd nokv-store:store)

# The binaries, with the commands compose/Dockerfile's build stage runs: each
# service module on its own (GOWORK=off), static, stripped.
mkdir -p compose/bin
for s in "${services[@]}"; do
  bin=${s%%:*} module=${s##*:}
  echo "== go build $bin"
  (cd "services/$module" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "../../compose/bin/$bin" "./cmd/$bin")
done

# version is used as a tag: only [A-Za-z0-9_.-], at most 128 characters.
vtag=$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-' | cut -c1-128)
for s in "${services[@]}"; do
  bin=${s%%:*}
  echo "== docker build $bin:$tag ($version)"
  # The output only on failure (the CLI's notice that the legacy builder is
  # deprecated is noise here: FROM scratch needs no BuildKit).
  if ! out=$(docker build -q -f compose/Dockerfile.prebuilt --target "$bin" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    -t "$bin:$tag" -t "$bin:$vtag" compose 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  if [ -n "$registry" ]; then
    for t in "$tag" "$vtag"; do
      docker tag "$bin:$tag" "$registry/$bin:$t"
      echo "== docker push $registry/$bin:$t"
      docker push -q "$registry/$bin:$t" >/dev/null
    done
  fi
done
docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.CreatedSince}}' \
  | grep -E "^(REPOSITORY|(.*/)?nokv-(redis|pd|store):($tag|$vtag)\b)" || true
