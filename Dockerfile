# sdaudit on a Hugging Face Docker Space (GPU) or any CUDA machine.
# Build: docker build -t sdaudit .   Run: docker run --gpus all -p 8501:8501 sdaudit
# BASE_IMAGE lets scripts/test-image.sh build the same file on a local Debian base (no registry).
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/home/user \
    SDAUDIT_HOME=/home/user/data \
    HF_HOME=/home/user/.cache/huggingface \
    PATH=/home/user/venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv curl \
    && rm -rf /var/lib/apt/lists/*

# Spaces run the container as uid 1000; everything it writes lives under its home. Ubuntu 24.04
# images already have `ubuntu` with uid 1000 (useradd would refuse: UID 1000 is not unique).
RUN if id -nu 1000 >/dev/null 2>&1; then userdel -r "$(id -nu 1000)"; fi \
    && useradd -m -u 1000 user
USER user
WORKDIR /home/user/app

COPY --chown=user requirements.txt pyproject.toml README.md ./
COPY --chown=user sdaudit ./sdaudit
RUN python3 -m venv /home/user/venv \
    && pip install --upgrade pip \
    && pip install -r requirements.txt

COPY --chown=user . .
RUN mkdir -p "$SDAUDIT_HOME" "$HF_HOME"

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD curl --fail http://localhost:8501/_stcore/health || exit 1
CMD ["streamlit", "run", "streamlit_app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
