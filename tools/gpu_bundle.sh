#!/usr/bin/env bash
# Packs what a bare GPU machine (CUDA driver and toolkit, none of latte's Debian packages, no
# network) needs to run latte's GPU checks without building there: latte and latte_cuda_tests
# built here for one architecture (default sm_90), the shared libraries they use that such a
# machine lacks (OpenBLAS, gfortran, quadmath, gomp) and the default corpus (Debian's fortunes).
# The result is build/bundle: run.sh, which runs the CUDA tests and the GPU benchmarks, each
# printing its table, and the files it runs packed in payload.tar.gz (about 20 MB instead of 60:
# the device tool carries at most 64 MiB with the working tree), unpacked by run.sh on its first
# call; tools/gpu_check.sh is the alternative that builds on the GPU machine itself.
#   tools/gpu_bundle.sh [ARCH]     (LATTE_BUNDLE_BUILD=DIR reuses a build directory), then on
#                                  the GPU machine, from the repository root:
#   bash build/bundle/run.sh       (with build/bundle carried along)
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-90}"
build="${LATTE_BUNDLE_BUILD:-build/bundle-build}"  # an existing CUDA build dir saves time
bundle=build/bundle
# Without MPI (and so without NCCL): the bare machine has no Open MPI to load or launch with.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLATTE_CUDA=ON -DLATTE_MPI=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build "$build" -j"$(nproc)" --target latte latte_cuda_tests >/dev/null
stage=build/bundle-stage
rm -rf "$bundle" "$stage"
mkdir -p "$bundle" "$stage/lib"
strip -o "$stage/latte" "$build/latte"
strip -o "$stage/latte_cuda_tests" "$build/tests/latte_cuda_tests"
for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libgomp.so.1; do
  path=$(ldd "$build/latte" | awk -v l="$lib" '$1 == l { print $3 }')
  [[ -n "$path" ]] && cp -L "$path" "$stage/lib/"
done
cp -r /usr/share/games/fortunes "$stage/fortunes"
tar -czf "$bundle/payload.tar.gz" -C "$stage" .
rm -rf "$stage"
git rev-parse --short HEAD >"$bundle/commit"
git diff --quiet || echo "+uncommitted changes" >>"$bundle/commit"
cat >"$bundle/run.sh" <<'RUN'
#!/usr/bin/env bash
# The GPU checks with prebuilt binaries (tools/gpu_bundle.sh): CUDA tests, cuBLAS peak, attention
# (flash, naive), MoE layer, memory-bound ops, whole training steps and where their GPU and host
# time goes (--profile and --profile-host by category; tools/ncu_step.sh kernel by kernel). Logs
# go to $OUT when set.
B=build/bundle
out="${OUT:-$B/out}"
mkdir -p "$out"
bin=$(mktemp -d)  # the unpacked payload
tar -xzf "$B/payload.tar.gz" -C "$bin" || { echo "cannot unpack $B/payload.tar.gz"; exit 1; }
export LD_LIBRARY_PATH="$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The binaries find the configs under LATTE_SOURCE_DIR and the corpus in its Debian home.
export LATTE_SOURCE_DIR="$PWD"
[[ -e /usr/share/games/fortunes ]] || { mkdir -p /usr/share/games && cp -r "$bin/fortunes" /usr/share/games/fortunes; }
start=$(date +%s)
step() { echo; echo "==== $* [$(($(date +%s) - start)) s]"; }
step "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader); commit $(tr '\n' ' ' <"$B/commit")"
step "latte_cuda_tests"
timeout 240 "$bin/latte_cuda_tests" 2>&1 | tail -n 60 | tee "$out/tests.log"
tests=${PIPESTATUS[0]}
step "cuBLAS peak and flash tile variants"
timeout 150 "$bin/latte_cuda_tests" --bench 2>&1 | tee "$out/bench.log"
step "latte bench attention moe memory train --device cuda"
timeout 400 "$bin/latte" bench attention moe memory train --device cuda 2>&1 | grep -v '^\[' | tee -a "$out/bench.log"
bench=${PIPESTATUS[0]}
step "where the step time goes: latte bench train --device cuda --quick --profile"
timeout 200 "$bin/latte" bench train --device cuda --quick --profile 2>&1 | tee "$out/profile.log"
profile=${PIPESTATUS[0]}
step "where the host's time goes: latte bench train --device cuda --quick --profile-host"
timeout 200 "$bin/latte" bench train --device cuda --quick --profile-host 2>&1 | tee -a "$out/profile.log"
host_profile=${PIPESTATUS[0]}
step "kernel by kernel: tools/ncu_step.sh (step 3 of the gpu-scale models under ncu)"
timeout 420 tools/ncu_step.sh "$bin/latte" "$out" 2>&1 | tee "$out/ncu.log"
ncu=${PIPESTATUS[0]}
step "done: tests exit $tests, benchmarks exit $bench, profile exit $profile, host profile exit $host_profile, ncu exit $ncu"
RUN
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1)); commit $(tr '\n' ' ' <"$bundle/commit")"
