#!/usr/bin/env bash
# Builds and installs optimized_transducer 1.4 (CPU only) against the installed torch, for
# local/bench_rnnt_loss.py's optimized-transducer path. Optional: nothing else uses it. About 1.5 min on 2 cores.
#
#   egs/librispeech/ASR/local/build_optimized_transducer.sh [WORK_DIR]
#
# Its sdist cannot build as is here: CMake downloads pybind11 from GitHub (no internet: pybind11's own sdist from
# PyPI is used instead, 3.1.0 as torch bundles; 2.6.0 does not compile on Python 3.11), torch 2.14's headers need
# C++20 (the package asks for C++14), and the CUDA build of torch makes TorchConfig.cmake run nvcc (replaced by a
# plain target on torch's headers and CPU libraries).
set -euo pipefail

PY=${PYTHON:-python3}
WORK=$(readlink -f "${1:-$(mktemp -d)}")
mkdir -p "$WORK"
"$PY" -m pip download --no-deps --no-binary :all: -d "$WORK" optimized_transducer==1.4 pybind11==3.1.0
tar -xzf "$WORK/optimized_transducer-1.4.tar.gz" -C "$WORK"
tar -xzf "$WORK/pybind11-3.1.0.tar.gz" -C "$WORK"
DL=$WORK
PYBIND11_VER=3.1.0
cd "$WORK/optimized_transducer-1.4"

# 3. patches
# 3a. torch 2.14 headers need C++20 (C++17 fails: "#error C++20 or later ... required")
sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 20)/' CMakeLists.txt
# 3b. torch's TorchConfig.cmake (CUDA build of torch) unconditionally runs
#     find_package(CUDA) + enable_language(CUDA), i.e. it invokes nvcc.  Replace
#     find_package(Torch) with a plain interface target so nvcc is never run.
cat > cmake/torch.cmake <<'EOF'
message(STATUS "Python executable: ${PYTHON_EXECUTABLE}")
execute_process(
  COMMAND "${PYTHON_EXECUTABLE}" -c "import os, torch; print(os.path.dirname(torch.__file__))"
  OUTPUT_STRIP_TRAILING_WHITESPACE OUTPUT_VARIABLE TORCH_DIR)
execute_process(
  COMMAND "${PYTHON_EXECUTABLE}" -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"
  OUTPUT_STRIP_TRAILING_WHITESPACE OUTPUT_VARIABLE OT_TORCH_CXX11_ABI)
set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=${OT_TORCH_CXX11_ABI}")
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
add_library(ot_torch INTERFACE)
target_include_directories(ot_torch SYSTEM INTERFACE
  "${TORCH_DIR}/include" "${TORCH_DIR}/include/torch/csrc/api/include")
target_link_libraries(ot_torch INTERFACE
  "${TORCH_DIR}/lib/libtorch.so" "${TORCH_DIR}/lib/libtorch_cpu.so" "${TORCH_DIR}/lib/libc10.so")
set(TORCH_LIBRARIES ot_torch)
execute_process(
  COMMAND "${PYTHON_EXECUTABLE}" -c "import torch; print(torch.__version__)"
  OUTPUT_STRIP_TRAILING_WHITESPACE OUTPUT_VARIABLE TORCH_VERSION)
message(STATUS "PyTorch version: ${TORCH_VERSION} (${TORCH_DIR})")
EOF

# 4. build + install (pybind11 taken from local dir instead of GitHub download)
export OT_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DOT_WITH_CUDA=OFF -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DFETCHCONTENT_SOURCE_DIR_PYBIND11=$DL/pybind11-$PYBIND11_VER -DPYTHON_EXECUTABLE=$("$PY" -c "import sys; print(sys.executable)")"
export OT_MAKE_ARGS=${OT_MAKE_ARGS:--j2}
"$PY" -m pip install --no-build-isolation --no-deps .


cd /
"$PY" -c "import optimized_transducer; print('optimized_transducer', optimized_transducer.__file__)"
