#!/usr/bin/env bash
# System packages for Feature Tracer's tests and tools on Debian 12 (run as root):
# PyTorch/NumPy/pytest for tools/ (golden references, exporter, demo training; OpenBLAS with OpenMP,
# without which torch falls back to the reference BLAS, ~29× slower), the Python 3.11 docs (part of the
# demo corpus) and Chromium for the browser end-to-end tests.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  python3-torch python3-numpy python3-pytest python3-regex libopenblas0-openmp python3.11-doc \
  chromium fonts-dejavu-core
