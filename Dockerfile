# syntax=docker/dockerfile:1
# InvoiceGen API, CPU, one stage: simple to build and to debug (shell, apt, the whole toolset inside).
# Production images: Dockerfile.prod (multi-stage, non-root, HEALTHCHECK); GPU: Dockerfile.gpu.
#
#   docker build -t invoicegen:0.1.0 .
#   docker run --rm -p 8000:8000 invoicegen:0.1.0
#
# The shipped model (models/invoicegen-small) is copied into the image; mount another checkpoint
# over /app/models, or point MODEL_PATH elsewhere, to serve a different one.
FROM python:3.11-slim

# The PyTorch CPU wheel index: a plain `pip install torch` would pull a multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_THREAD_LIMIT=1 \
    MODEL_PATH=/app/models/invoicegen-small \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    API_WORKERS=1 \
    LOG_LEVEL=info

# Tesseract with the languages the project tests (OCR_ENGINE=tesseract), fonts for overlays and the
# invoice factory, pango for WeasyPrint (`invoicegen generate` works inside this image too).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa \
      tesseract-ocr-ita tesseract-ocr-nld \
      fonts-dejavu-core fonts-liberation2 fonts-noto-core \
      libpango-1.0-0 libpangoft2-1.0-0 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, pinned, from the CPU index; then the package (torch==2.13.0 is already satisfied)
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0

COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install .

COPY models/ models/

EXPOSE 8000
CMD ["invoicegen", "serve"]
