"""ONNX export and runtime backends agree with the torch model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from batch_helpers import SAMPLE_PDF
from invoicegen.cli import app
from invoicegen.document import LoadedDocument, PageBackend
from invoicegen.extract.pipeline import Extractor
from invoicegen.model.attention_bias import MASKED, AttentionBias
from invoicegen.model.data import prepare_labelled
from invoicegen.model.export import OUTPUTS, attention_bias
from invoicegen.model.multitask import MultiTaskLayoutLMv3, backbone_config
from invoicegen.model.predict import MIN_FILL, predict_pages
from invoicegen.model.recipes import get_recipe
from invoicegen.model.runtime import load_runtime
from invoicegen.model.train import TrainConfig, train
from invoicegen.schema import Document, ExtractionResult, Page, Word
from toydata import toy_document, write_toy_dataset


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("onnx")
    data = write_toy_dataset(root / "data", n=8)
    out = root / "model"
    train(TrainConfig(data=data, out=out, recipe=get_recipe("tiny").with_overrides(epochs=25), progress=False))
    runner = CliRunner()
    for extra in ([], ["--int8"]):
        res = runner.invoke(app, ["export", "--model", str(out), "--format", "onnx", *extra])
        assert res.exit_code == 0, res.output
    return out


def _word_tags(runtime, docs) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    pages = [p for d in docs for p in prepare_labelled(d, runtime.tokenizer, runtime.recipe)]
    return [lg["ner"] for lg in predict_pages(pages, runtime.run)]


def test_onnx_file_has_named_outputs_dynamic_axes_and_metadata(exported: Path) -> None:
    model = onnx.load(str(exported / "model.onnx"))
    assert [o.name for o in model.graph.output] == OUTPUTS
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "sequence"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert {"labels", "recipe", "model_version"} <= set(meta)
    assert model.opset_import[0].version == 14


def test_numpy_attention_bias_is_what_the_encoder_adds() -> None:
    """The bias the ONNX runtime feeds (numpy, tables from the file's metadata) is the encoder's own
    relative + spatial bias for every real key, distances beyond the clamp included, and the mask value
    for padding keys."""
    import torch

    torch.manual_seed(0)
    model = MultiTaskLayoutLMv3(backbone_config(get_recipe("tiny"), vocab_size=100)).eval()
    encoder = model.backbone.encoder
    for table in (encoder.rel_pos_bias, encoder.rel_pos_x_bias, encoder.rel_pos_y_bias):
        torch.nn.init.normal_(table.weight)  # trained-sized values instead of the tiny initial ones
    n, length = 2, 300  # longer than the 1D clamp (128); boxes span more than the 2D one (256)
    bbox = torch.randint(0, 1001, (n, length, 4))
    mask = np.ones((n, length), dtype=np.int64)
    mask[1, 200:] = 0
    bias = AttentionBias.from_metadata(attention_bias(model).to_metadata())  # as the runtime loads it
    ours = bias(bbox.numpy(), mask)
    position_ids = model.backbone.embeddings.position_ids[:, :length].expand(n, length)
    with torch.no_grad():
        theirs = encoder._compute_position_bias(position_ids, bbox).numpy()
    assert ours.shape == theirs.shape == (n, 2, length, length)
    for i in range(n):
        keys = mask[i] == 1
        np.testing.assert_allclose(ours[i][:, :, keys], theirs[i][:, :, keys], rtol=1e-5, atol=1e-6)
        assert (ours[i][:, :, ~keys] == MASKED).all()
    assert ours[0].std() > 0.1


def test_onnx_matches_torch_logits_and_tags(exported: Path) -> None:
    docs = [toy_document(i, n_rows=2 + i % 5) for i in range(20)]
    ref = _word_tags(load_runtime(exported, "torch"), docs)
    got = _word_tags(load_runtime(exported, "onnx"), docs)
    max_diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))
    assert max_diff < 1e-3
    agree = np.mean(np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(ref, got, strict=True)]))
    assert agree >= 0.999


@pytest.mark.parametrize("backend", ["onnx-int8", "torch-int8"])
def test_int8_backends_mostly_agree_with_fp32(exported: Path, backend: str) -> None:
    docs = [toy_document(i) for i in range(10)]
    ref = _word_tags(load_runtime(exported, "torch"), docs)
    rt = load_runtime(exported, backend)
    assert rt.quantized
    got = _word_tags(rt, docs)
    agree = np.mean(np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(ref, got, strict=True)]))
    assert agree >= 0.95


def test_auto_backend_prefers_an_onnx_file_in_the_checkpoint(exported: Path, tmp_path: Path) -> None:
    assert load_runtime(exported, "auto").backend == "onnx"
    with pytest.raises(ValueError, match="MODEL_BACKEND"):
        load_runtime(exported, "tensorrt")


def _loaded(i: int) -> LoadedDocument:
    """A toy page as a loaded document (words only: the text model needs no image)."""
    page = toy_document(i, n_rows=2 + i % 7).pages[0]
    words = [Word(text=t, bbox=b, confidence=1.0) for t, b in zip(page.words, page.bboxes, strict=True)]
    doc = Document(filename=f"toy{i}.pdf", sha256=f"{i:064d}", media_type="application/pdf",
                   pages=[Page(index=0, width=page.width, height=page.height, words=words)])
    return LoadedDocument(doc, PageBackend(), 150)


def test_extract_many_gives_every_document_what_extract_gives_it(exported: Path) -> None:
    """The INT8 model quantises activations with one scale per call: windows of other documents in
    the same call would change a document's result. extract_many (the batch runner, the API's
    micro-batches) must give each document exactly what it gets alone."""
    extractor = Extractor(load_runtime(exported, "onnx-int8"))

    def plain(results: list[ExtractionResult]) -> list[dict[str, Any]]:
        return [r.model_dump(exclude={"timings_ms"}) for r in results]

    docs = [_loaded(i) for i in range(12)]
    alone = plain([extractor.extract_many([d])[0] for d in docs])
    assert plain(extractor.extract_many(docs)) == alone
    assert plain(extractor.extract_many(docs[::-1]))[::-1] == alone


def test_an_int8_window_gets_the_same_logits_alone_as_in_a_shared_call(exported: Path) -> None:
    """A quantised model scales activations per call: run() takes the windows one at a time, so a
    window's logits never depend on its neighbours (nor on the padding they would add)."""
    runtime = load_runtime(exported, "onnx-int8")
    extractor = Extractor(runtime)
    short, long = (extractor._encode(_loaded(i))[0].windows[0] for i in (1, 6))
    assert len(short.input_ids) < len(long.input_ids)
    together = runtime.run([long, short])
    for b, w in enumerate((long, short)):
        alone = runtime.run([w])
        for name, logits in together.items():
            n = len(w.input_ids)
            np.testing.assert_array_equal(logits[b, :n], alone[name][0])
            assert not logits[b, n:].any()


def test_extract_many_batches_documents_together_with_an_fp32_model(exported: Path) -> None:
    """Unquantised, a window's logits do not depend on its batch neighbours, so concurrent documents
    share model calls (the API's micro-batching) and still get what they get alone."""
    runtime = load_runtime(exported, "onnx")
    calls: list[list[int]] = []
    run = runtime.run

    def counting(windows: Any) -> Any:
        calls.append([len(w.input_ids) for w in windows])
        return run(windows)

    runtime.run = counting  # type: ignore[method-assign]
    extractor = Extractor(runtime)
    docs = [_loaded(i) for i in range(8)]
    together = extractor.extract_many(docs)
    # the 8 one-window documents share calls, each call with little padding (model.predict.MIN_FILL)
    assert sum(map(len, calls)) == 8 and len(calls) < 8
    assert all(min(lengths) >= MIN_FILL * max(lengths) for lengths in calls)
    for doc, res in zip(docs, together, strict=True):
        alone = extractor.extract_many([doc])[0]
        assert {k: v.value for k, v in res.fields.items()} == {k: v.value for k, v in alone.fields.items()}
        assert [it.amount for it in res.line_items] == [it.amount for it in alone.line_items]


def test_the_onnx_backend_extracts_without_importing_torch(exported: Path) -> None:
    """torch + transformers are ~4-5 s of imports per process (a batch worker process, a CLI call)."""
    code = ("import sys; from invoicegen.extract.pipeline import Extractor; "
            f"r = Extractor.load({str(exported)!r}).extract({str(SAMPLE_PDF)!r}); "
            "print(r.model.backend, sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "MODEL_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["onnx", "[]"]
