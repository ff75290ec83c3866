#!/usr/bin/env bash
# The one script a GPU session runs (docs/gpu.md): configures a CUDA build for this GPU's
# architecture only, builds latte and the CUDA test binary, runs the CUDA tests (ctest -L cuda:
# kernels and ops against their CPU twins, 20-step GPU-vs-CPU training), the cuBLAS GEMM peak and
# the flash kernels' tile-variant sweep (latte_cuda_tests --bench), the attention, MoE and
# memory-bound op benchmarks (latte bench attention moe memory --device cuda), the PyTorch SDPA
# baseline (tools/bench_sdpa.py) and whole training steps (latte bench train --device cuda:
# tokens/s, MFU) with short profiled reruns (--quick --profile and --profile-host: GPU and host
# time per category of op) and, where the toolkit has ncu, one step of each gpu-scale model kernel
# by kernel with what bounds its attention kernels (tools/ncu_step.sh), and prints one summary
# table. The full log goes to $OUT/gpu_check.log when OUT is set (the device tool returns files
# from $OUT), else to build/gpu/gpu_check.log. Ends within 8 minutes on an H200, plus up to 7 for
# the ncu step.
#   tools/gpu_check.sh
# Debian packages the GPU machine lacks (CLI11, toml11, doctest, OpenBLAS, nlohmann-json) can be
# carried as .deb files in .deps/ (or $LATTE_DEPS_DIR): they are unpacked into / first.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
build=build/gpu
mkdir -p "$build" ${OUT:+"$OUT"}
log="${OUT:+$OUT/gpu_check.log}"
log="${log:-$build/gpu_check.log}"
: >"$log"
exec > >(tee -a "$log") 2>&1

section() { echo; echo "==== $* [$(($(date +%s) - start)) s]"; }
fail() { echo "gpu_check: $*"; exit 1; }

section "GPU"
command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: no GPU driver on this machine"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
[[ -n "$arch" ]] || fail "could not read the GPU's compute capability"
nvcc --version | tail -n 1

deps="${LATTE_DEPS_DIR:-.deps}"
if compgen -G "$deps/*.deb" >/dev/null; then
  section "unpacking the carried packages of $deps"
  for f in "$deps"/*.deb; do dpkg -x "$f" / && echo "  $(basename "$f")"; done
  ldconfig
fi
openblas_hint=()
if [[ ! -d /usr/lib/x86_64-linux-gnu/cmake/openblas ]]; then
  for d in /usr/lib/x86_64-linux-gnu/openblas-{pthread,openmp}/cmake/openblas; do
    [[ -d "$d" ]] && openblas_hint=("-DOpenBLAS_DIR=$d") && break
  done
fi

section "configure (CUDA architecture $arch)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLATTE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" "${openblas_hint[@]}" >"$build/configure.log" 2>&1 ||
  { tail -n 30 "$build/configure.log"; fail "cmake configure failed (log above)"; }
echo "configured $build"

section "build latte and latte_cuda_tests (-j16)"
build_start=$(date +%s)
timeout 300 cmake --build "$build" -j16 --target latte latte_cuda_tests >"$build/build.log" 2>&1 ||
  { grep -E "error|Error" "$build/build.log" | head -n 40; tail -n 20 "$build/build.log"
    fail "build failed (log above)"; }
build_s=$(($(date +%s) - build_start))
echo "built in ${build_s} s"

section "ctest -L cuda"
timeout 240 ctest --test-dir "$build" -L cuda -V --timeout 220 2>&1 | tee "$build/ctest.log"
test_status=${PIPESTATUS[0]}

section "cuBLAS GEMM peak and flash tile variants: latte_cuda_tests --bench"
timeout 150 "$build/tests/latte_cuda_tests" --bench 2>&1 | tee "$build/bench.log"
bench_status=${PIPESTATUS[0]}

section "attention, MoE and memory-bound ops: latte bench attention moe memory --device cuda"
timeout 270 "$build/latte" bench attention moe memory --device cuda 2>&1 | tee -a "$build/bench.log"
op_bench_status=${PIPESTATUS[0]}

section "PyTorch SDPA baseline: tools/bench_sdpa.py"
PYTHONUNBUFFERED=1 timeout 120 python3 tools/bench_sdpa.py 2>&1 | tee -a "$build/bench.log"

section "training steps: latte bench train --device cuda"
timeout 150 "$build/latte" bench train --device cuda 2>&1 | tee -a "$build/bench.log"
train_status=${PIPESTATUS[0]}

section "where the step time goes: latte bench train --device cuda --quick --profile"
timeout 150 "$build/latte" bench train --device cuda --quick --profile 2>&1 | tee "$build/profile.log"
profile_status=${PIPESTATUS[0]}
section "where the host's time goes: latte bench train --device cuda --quick --profile-host"
timeout 150 "$build/latte" bench train --device cuda --quick --profile-host 2>&1 |
  tee -a "$build/profile.log"

section "kernel by kernel: tools/ncu_step.sh (step 3 of the gpu-scale models under ncu)"
timeout 420 tools/ncu_step.sh "$build/latte" "$build/ncu" 2>&1 | tee "$build/ncu.log"
ncu_status=${PIPESTATUS[0]}

section "summary"
doctest_line=$(grep -E "^\[doctest\] (test cases|assertions):" "$build/ctest.log" | tr '\n' ' ')
ctest_line=$(grep -E "tests passed|tests failed" "$build/ctest.log" | tail -n 1)
python3 - "$build/bench.log" <<'EOF' || grep "^BENCH" "$build/bench.log"
import sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("BENCH "):
        continue
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    rows[(kv.pop("name"), kv.get("qk"), kv.get("v"), kv.get("T"))] = kv
def get(name, qk=None, v=None, t=None, key="tflops"):
    kv = rows.get((name, qk, v, t))
    return kv.get(key, "-") if kv and "error" not in kv else "-"
peak = get("gemm_bf16_8192")
print(f"cuBLAS bf16 GEMM 8192^3: {peak} TFLOP/s (the practical peak)")
print("\nAttention bf16 causal B=4 H=16, TFLOP/s: latte flash vs PyTorch SDPA; latte naive")
print(f"{'d(qk,v)':<10} {'T':>5} {'latte fwd':>10} {'sdpa fwd':>9} {'latte f+b':>10} {'sdpa f+b':>9}"
      f" {'naive f+b':>10} {'naive MiB':>10}")
for qk, v in [("64", "64"), ("128", "128"), ("192", "128")]:
    for t in ["1024", "4096", "8192"]:
        label = f"({qk},{v})"
        print(f"{label:<10} {t:>5} "
              f"{get('flash_fwd', qk, v, t):>10} {get('sdpa_fwd', qk, v, t):>9} "
              f"{get('flash_fwd_bwd', qk, v, t):>10} {get('sdpa_fwd_bwd', qk, v, t):>9} "
              f"{get('naive_fwd_bwd', qk, v, t):>10} "
              f"{get('naive_fwd_bwd', qk, v, t, key='peak_mib'):>10}")
print("\nMoE layer (N=16384, d=2048, E=64 top-6, width 1408, bf16) vs loops of per-expert GEMMs, ms;"
      "\nadded = layer - GEMM loop (routing, permutation, un-permutation), % of the GEMM loop")
print(f"  {'pass':<8} {'layer':>9} {'GEMMs':>9} {'added':>7} (target <= 25%)")
for suffix, label in [("fwd", "fwd"), ("fwd_bwd", "fwd+bwd")]:
    print(f"  {label:<8} {get(f'moe_layer_{suffix}', key='ms'):>9}"
          f" {get(f'moe_loop_{suffix}', key='ms'):>9}"
          f" {get(f'moe_overhead_{suffix}', key='pct'):>6}%")
steps = ["moe_routing", "moe_dispatch", "moe_gather", "moe_weights", "moe_expert_mlps",
         "moe_combine"]
print("  forward steps, ms: " + ", ".join(f"{n[4:]} {get(n, key='ms')}" for n in steps))
print("\nMemory-bound ops ([16384, 1024] bf16): GB/s, share of a device-to-device copy's")
for line in open(sys.argv[1]):
    if line.startswith("BENCH name=mem_"):
        kv = dict(p.split("=", 1) for p in line.split()[1:])
        print(f"  {kv['name'][4:]:<22} {kv.get('gbps', '-'):>8} {float(kv.get('of_copy', 'nan')) * 100:>5.0f}%")
best = {}
for line in open(sys.argv[1]):
    if line.startswith("BENCH name=flash_tiles "):
        kv = dict(p.split("=", 1) for p in line.split()[1:])
        key = (f"({kv['qk']},{kv['v']}) T={kv['T']}", kv["kernel"])
        if key not in best or float(kv["of_default"]) > best[key][1]:
            best[key] = (kv["variant"], float(kv["of_default"]), kv["tflops"],
                         kv.get("registers", "-"), kv.get("warps_per_sm", "-"))
if best:
    print("\nFlash tile variants (latte_cuda_tests --bench): the fastest per kernel, x variant 0,"
          "\nwith its registers per thread and resident warps per SM")
    for (shape, kernel), (variant, ratio, rate, regs, warps) in sorted(best.items()):
        print(f"  {shape:<18} {kernel:<8} variant {variant}  {rate:>7} TFLOP/s  x{ratio:.2f}"
              f"  {regs:>3} regs {warps:>2} warps/SM")
train = []
for line in open(sys.argv[1]):
    if line.startswith("BENCH name=train "):
        kv = dict(p.split("=", 1) for p in line.split()[1:])
        train.append(kv)
print("\nTraining steps (bf16 mixed precision): tokens/s, model TFLOP/s, MFU")
for kv in train:
    print(f"  {kv.get('scale', '-'):<5} {kv.get('model', '-'):<18} {kv.get('tokens_per_s', '-'):>10}"
          f" {kv.get('tflops', '-'):>9} {float(kv.get('mfu', 'nan')) * 100:>6.1f}%")
EOF
echo
echo "Step time split (GPU, then host time per category, 7 profiled steps; each table above):"
grep -E "^\[|^  .* s +-?[0-9.]+%$" "$build/profile.log"
echo
echo "CUDA tests: ${ctest_line:-no ctest result} (exit $test_status)"
echo "            ${doctest_line:-}"
echo "benchmarks: GEMM peak exit $bench_status, attention and MoE exit $op_bench_status," \
  "training exit $train_status, profile exit $profile_status, ncu exit $ncu_status;" \
  "build ${build_s} s;" \
  "total $(($(date +%s) - start)) s"
echo "log: $log"
[[ $test_status -eq 0 && $bench_status -eq 0 && $op_bench_status -eq 0 && $train_status -eq 0 &&
  $profile_status -eq 0 ]]
