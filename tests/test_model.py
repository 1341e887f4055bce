"""The model: tokenizer, windows, training, checkpoints, --base."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LayoutLMv3Config, LayoutLMv3Model

from invoicegen.model.bio import (
    constrained_viterbi,
    fill_islands,
    group_entities,
    relabel_bio,
    snap_row_starts,
    whole_name_lines,
)
from invoicegen.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from invoicegen.model.data import gold_roles, prepare_labelled
from invoicegen.model.encode import (
    encode_page,
    merge_window_logits,
    split_windows,
    window_owners,
)
from invoicegen.model.multitask import MultiTaskLayoutLMv3, backbone_config
from invoicegen.model.predict import predict_pages, torch_runner
from invoicegen.model.recipes import get_recipe
from invoicegen.model.tokenizer import WordTokenizer
from invoicegen.model.train import TrainConfig, _lr_lambda, train
from invoicegen.reading import reading_order
from invoicegen.schema import NER_LABELS
from toydata import toy_document, write_toy_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A tiny model trained to overfit 8 toy documents (a few seconds on 2 cores)."""
    root = tmp_path_factory.mktemp("tiny")
    data = write_toy_dataset(root / "data", n=8)
    out = root / "model"
    meta = train(TrainConfig(data=data, out=out, recipe=get_recipe("tiny").with_overrides(epochs=40),
                             progress=False, fp16_weights=False))
    return data, out, meta


def test_tiny_model_overfits_and_predicts_the_labels(trained: tuple[Path, Path, dict]) -> None:
    data, out, meta = trained
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < 0.5 * log[0]["train_loss"]
    ckpt = load_checkpoint(out)
    doc = toy_document(3)
    pages = prepare_labelled(doc, ckpt.tokenizer, ckpt.recipe)
    logits = predict_pages(pages, torch_runner(ckpt.model, ckpt.tokenizer.pad_id))
    pred = [NER_LABELS[i] for i in logits[0]["ner"].argmax(-1)]
    assert pages[0].gold is not None
    assert pred == pages[0].gold["ner"]
    assert meta["test_metrics"]["ner"]["f1"] > 0.95


def test_checkpoint_round_trip_gives_identical_logits(trained: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, out, _ = trained
    ckpt = load_checkpoint(out)
    save_checkpoint(tmp_path / "copy", ckpt.model, ckpt.tokenizer, ckpt.recipe, ckpt.meta)
    again = load_checkpoint(tmp_path / "copy")
    pages = prepare_labelled(toy_document(5), ckpt.tokenizer, ckpt.recipe)
    a = predict_pages(pages, torch_runner(ckpt.model, ckpt.tokenizer.pad_id))[0]
    b = predict_pages(pages, torch_runner(again.model, again.tokenizer.pad_id))[0]
    for head in a:
        np.testing.assert_array_equal(a[head], b[head])
    for name in ("config.json", "model.safetensors", "tokenizer.json", "labels.json", "recipe.json", "README.md"):
        assert (out / name).exists(), name


def test_model_card_says_how_to_rebuild_the_training_data() -> None:
    from invoicegen.model.train import _generate_command

    recipe = {"n": 5000, "seed": 2, "augment": 0.3, "mix": 0.5, "dpi": 150}
    assert _generate_command(Path("data/f"), recipe) == (
        "invoicegen generate --n 5000 --out data/f --seed 2 --augment 0.3 --mix 0.5\n")
    assert _generate_command(Path("data/f"), {}) == ""


def test_checkpoint_with_other_label_schema_is_refused(trained: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, out, _ = trained
    ckpt = load_checkpoint(out)
    bad = save_checkpoint(tmp_path / "bad", ckpt.model, ckpt.tokenizer, ckpt.recipe, ckpt.meta)
    (bad / "labels.json").write_text(json.dumps({"ner": ["O"], "table": ["O"], "cell": ["O"]}))
    with pytest.raises(CheckpointError, match="label schema"):
        load_checkpoint(bad)


def test_windows_cover_every_word_of_a_long_page_exactly_once() -> None:
    rng = np.random.default_rng(0)
    pieces = [[5] * int(rng.integers(1, 5)) for _ in range(900)]  # ~2,250 tokens: 5+ windows
    boxes = [(0, 0, 10, 10)] * len(pieces)
    windows = encode_page(pieces, boxes, cls_id=0, sep_id=2, max_length=512, overlap=128)
    assert len(windows) >= 5
    assert all(len(w.input_ids) <= 512 for w in windows)
    assert all(a.end > b.start for a, b in zip(windows, windows[1:], strict=False))  # windows overlap
    owners = window_owners(windows, len(pieces))
    assert -1 not in owners
    # each word's merged row comes from exactly one window: mark rows by window id and check
    logits = [np.full((len(w.input_ids), 1), wi, dtype=np.float32) for wi, w in enumerate(windows)]
    merged = merge_window_logits(windows, logits, len(pieces))
    assert [int(v) for v in merged[:, 0]] == owners
    # and the owner keeps context on both sides where it can
    for w, o in enumerate(owners):
        win = windows[o]
        assert win.start <= w < win.end


def test_split_windows_handles_a_word_longer_than_a_window() -> None:
    assert split_windows([[1] * 600, [1]], max_length=512) == [(0, 1), (1, 2)]


def test_base_directory_initialises_the_backbone(tmp_path: Path) -> None:
    """--base: a (tiny) pretrained LayoutLMv3 saved with save_pretrained + its BPE files."""
    base = tmp_path / "base"
    tok = WordTokenizer.train(["Invoice Total Amount Date"] * 50, vocab_size=300, min_frequency=1)
    cfg = LayoutLMv3Config(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=128, coordinate_size=12, shape_size=8, max_position_embeddings=514,
                           visual_embed=False, has_relative_attention_bias=False,
                           has_spatial_attention_bias=False)
    pretrained = LayoutLMv3Model(cfg)
    pretrained.save_pretrained(base)
    tok.save(base)
    data = write_toy_dataset(tmp_path / "data", n=4)
    out = tmp_path / "out"
    recipe = get_recipe("tiny").with_overrides(epochs=1, learning_rate=0.0)  # lr 0: weights stay as loaded
    train(TrainConfig(data=data, out=out, recipe=recipe, base=base, progress=False, fp16_weights=False))
    ckpt = load_checkpoint(out)
    theirs = pretrained.state_dict()
    for name, value in ckpt.model.backbone.state_dict().items():
        torch.testing.assert_close(value, theirs[name], msg=name)


def test_training_goes_on_from_an_invoicegen_checkpoint(tmp_path: Path) -> None:
    """--base with one of our checkpoints: its tokenizer and every weight (heads too) are the start."""
    data = write_toy_dataset(tmp_path / "data", n=4)
    recipe = get_recipe("tiny").with_overrides(epochs=1)
    first = tmp_path / "first"
    train(TrainConfig(data=data, out=first, recipe=recipe, progress=False, fp16_weights=False))
    second = tmp_path / "second"
    train(TrainConfig(data=data, out=second, recipe=recipe.with_overrides(learning_rate=0.0), base=first,
                      progress=False, fp16_weights=False))
    a, b = load_checkpoint(first), load_checkpoint(second)
    assert a.tokenizer.vocab_size == b.tokenizer.vocab_size
    for name, value in b.model.state_dict().items():
        torch.testing.assert_close(value, a.model.state_dict()[name], msg=name)
    with pytest.raises(ValueError, match="--recipe tiny"):
        train(TrainConfig(data=data, out=tmp_path / "third", recipe=get_recipe("small"), base=first, progress=False))


def test_relative_and_spatial_attention_biases_learn() -> None:
    """transformers looks the bias tables up under no_grad; our model must give them a gradient, or
    they would ship at their random initial values."""
    recipe = get_recipe("tiny")
    assert recipe.attention_bias
    model = MultiTaskLayoutLMv3(backbone_config(recipe, vocab_size=300))
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (2, 40), generator=gen)
    top = torch.randint(0, 900, (2, 40, 1), generator=gen)
    bbox = torch.cat([top, top, top + 40, top + 12], dim=-1)
    labels = torch.randint(0, 3, (2, 40), generator=gen)
    model(ids, bbox, torch.ones_like(ids), ner_labels=labels)["loss"].backward()
    encoder = model.backbone.encoder
    for table in (encoder.rel_pos_bias, encoder.rel_pos_x_bias, encoder.rel_pos_y_bias):
        assert table.weight.grad is not None and float(table.weight.grad.abs().sum()) > 0


def test_a_wall_time_budget_decays_the_learning_rate_by_the_deadline() -> None:
    steps = _lr_lambda(total=100, warmup=10)
    assert steps(0) == pytest.approx(0.1) and steps(10) == 1.0 and steps(100) == 0.0
    clock = _lr_lambda(total=100, warmup=10, deadline=time.time() + 3600)
    assert clock(50) == pytest.approx(50 / 90)  # far from the deadline: the step schedule rules
    late = _lr_lambda(total=100, warmup=10, deadline=time.time() - 1)
    assert late(5) == pytest.approx(0.6) and late(20) == 0.0  # past it: warm-up only, then 0


def test_reading_order_and_relabelling_put_b_on_the_first_word_in_reading_order() -> None:
    # a two-line address (words 0-1 on line 1, word 2 on line 2) next to a date on line 1 (word 3)
    boxes = [(10, 10, 40, 20), (45, 10, 80, 20), (10, 25, 60, 35), (300, 10, 350, 20)]
    tags = ["B-SUPPLIER_ADDRESS", "I-SUPPLIER_ADDRESS", "I-SUPPLIER_ADDRESS", "B-INVOICE_DATE"]
    order = reading_order(boxes)
    assert order == [0, 1, 3, 2]
    new = relabel_bio(tags, order)
    assert new == ["B-SUPPLIER_ADDRESS", "I-SUPPLIER_ADDRESS", "B-INVOICE_DATE", "I-SUPPLIER_ADDRESS"]
    # and the decoder groups the interleaved address back into one instance
    ents = group_entities(new, [boxes[i] for i in order])
    assert [(e.type, e.words) for e in ents] == [("SUPPLIER_ADDRESS", [0, 1, 3]), ("INVOICE_DATE", [2])]


def test_gold_roles_follow_reading_order_for_rows_and_cells() -> None:
    doc = toy_document(1, n_rows=2)
    page = doc.pages[0]
    order = reading_order(page.bboxes)
    roles = gold_roles(page, order)
    rows = [t for t in roles["table"] if t.startswith("ROW")]
    assert rows.count("ROW_B") == 2
    assert roles["cell"].count("CELL_B") == 3 + 2 * 3  # header cells + 3 cells per row


def test_constrained_viterbi_never_emits_an_orphan_inside_tag() -> None:
    labels = ("O", "B-X", "I-X", "B-Y", "I-Y")
    # the argmax alone would say O, I-X, I-X: invalid
    lp = np.log(np.array([[0.9, 0.05, 0.01, 0.02, 0.02],
                          [0.3, 0.2, 0.45, 0.03, 0.02],
                          [0.3, 0.1, 0.55, 0.03, 0.02]]))
    path = [labels[i] for i in constrained_viterbi(lp, labels)]
    assert path in (["O", "B-X", "I-X"], ["O", "O", "O"])
    assert path == ["O", "B-X", "I-X"]


def test_an_iban_wrapped_onto_the_next_line_stays_one_entity() -> None:
    # "DE89 3704 0044 0532" / "0130 00" — the second line starts back at the left edge
    boxes = [(100, 10, 130, 20), (135, 10, 165, 20), (170, 10, 200, 20), (205, 10, 235, 20),
             (100, 23, 130, 33), (135, 23, 155, 33), (400, 23, 450, 33)]
    tags = ["B-SUPPLIER_IBAN"] + ["I-SUPPLIER_IBAN"] * 5 + ["B-TOTAL_AMOUNT"]
    ents = group_entities(tags, boxes)
    assert [(e.type, e.words) for e in ents] == [("SUPPLIER_IBAN", [0, 1, 2, 3, 4, 5]), ("TOTAL_AMOUNT", [6])]
    # an I- tag far away on another part of the page does not join: it starts its own instance
    far = group_entities(["B-SUPPLIER_IBAN", "I-SUPPLIER_IBAN"], [(100, 10, 130, 20), (100, 300, 130, 310)])
    assert len(far) == 2


def test_a_row_never_starts_in_the_middle_of_a_line() -> None:
    # "55 kg Harina de trigo 1,59" then "15 paq. Guantes": the model started both rows at the description
    words = [(10, 100, 20, 110), (25, 100, 40, 110), (50, 100, 90, 110), (200, 100, 230, 110),
             (10, 120, 20, 130), (25, 120, 45, 130), (50, 120, 95, 130)]
    tags = ["ROW_I", "ROW_I", "ROW_B", "ROW_I", "ROW_I", "ROW_I", "ROW_B"]
    assert snap_row_starts(tags, words) == ["ROW_B", "ROW_I", "ROW_I", "ROW_I", "ROW_B", "ROW_I", "ROW_I"]
    # a wrapped description's second line, and a header word before a row on its line, stay as they are
    kept = ["HEADER", "ROW_B", "ROW_I", "ROW_I", "ROW_I", "ROW_I", "ROW_I"]
    assert snap_row_starts(kept, words) == kept


def test_row_repairs_use_one_start_per_line_and_one_amount_per_row() -> None:
    line = [(10, 100, 40, 110), (60, 100, 90, 110), (200, 100, 230, 110)]  # sku, description, amount
    nxt = [(x0, y0 + 20, x1, y1 + 20) for x0, y0, x1, y1 in line]
    boxes = line + nxt
    ner = ["B-ITEM_SKU", "B-ITEM_DESCRIPTION", "B-ITEM_AMOUNT"] * 2
    # the model started a row at the SKU and again at the description; and missed the next row's start
    tags = ["ROW_B", "ROW_B", "ROW_I", "ROW_I", "ROW_I", "ROW_I"]
    assert snap_row_starts(tags, boxes, ner) == ["ROW_B", "ROW_I", "ROW_I", "ROW_B", "ROW_I", "ROW_I"]
    # without entity tags a line with no start continues the row (a wrapped description looks the same)
    assert snap_row_starts(tags, boxes) == ["ROW_B", "ROW_I", "ROW_I", "ROW_I", "ROW_I", "ROW_I"]
    # the page's first row word starts a row even when the model tagged it inside
    assert snap_row_starts(["HEADER", "ROW_I"], [(10, 80, 40, 90), (10, 100, 40, 110)]) == ["HEADER", "ROW_B"]
    # a header word the model read as a row word stays in the header: no empty row above the first item
    head = [(10, 80, 40, 90), (50, 80, 70, 90), (75, 80, 99, 90), (10, 100, 40, 110)]
    assert snap_row_starts(["HEADER", "HEADER", "ROW_I", "ROW_I"], head) == ["HEADER", "HEADER", "HEADER", "ROW_B"]


def test_one_word_holes_in_a_value_or_a_row_are_closed() -> None:
    # "VAT ID: DE 811 907 980": the model read 811 as an address word
    words = [(10, 10, 30, 20), (35, 10, 50, 20), (55, 10, 70, 20), (75, 10, 90, 20), (95, 10, 110, 20),
             (115, 10, 130, 20)]
    tags = ["O", "O", "B-SUPPLIER_TAX_ID", "I-SUPPLIER_ADDRESS", "I-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID"]
    filled = fill_islands(tags, words)
    assert filled == ["O", "O", "B-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID"]
    assert [e.words for e in group_entities(filled, words)] == [[2, 3, 4, 5]]
    # a row word the table head left out ("Ergonomic [office] chair")
    assert fill_islands(["ROW_B", "ROW_I", "O", "ROW_I"], words[:4]) == ["ROW_B", "ROW_I", "ROW_I", "ROW_I"]
    # not closed: the next word starts a new value, the hole is two words, or a column gap lies between
    two_values = ["B-ITEM_DESCRIPTION", "O", "B-ITEM_QUANTITY"]
    assert fill_islands(two_values, words[:3]) == two_values
    two_holes = ["B-SUPPLIER_TAX_ID", "O", "O", "I-SUPPLIER_TAX_ID"]
    assert fill_islands(two_holes, words[:4]) == two_holes
    columns = [(10, 10, 30, 20), (120, 10, 140, 20), (250, 10, 270, 20)]
    assert fill_islands(["B-SUBTOTAL", "O", "I-SUBTOTAL"], columns) == ["B-SUBTOTAL", "O", "I-SUBTOTAL"]


def test_a_party_name_takes_its_whole_line_from_the_address_below() -> None:
    # "Royal Uittenbosch" / "Kerkstraat 5" / "1234 AB Utrecht": the model started the address at Uittenbosch
    block = [(10, 10, 40, 20), (45, 10, 95, 20), (10, 25, 50, 35), (55, 25, 65, 35), (10, 40, 30, 50),
             (35, 40, 45, 50), (50, 40, 80, 50)]
    tags = ["B-BUYER_NAME", "I-BUYER_ADDRESS", "I-BUYER_ADDRESS", "I-BUYER_ADDRESS", "I-BUYER_ADDRESS",
            "I-BUYER_ADDRESS", "I-BUYER_ADDRESS"]
    fixed = whole_name_lines(tags, block)
    assert fixed[:3] == ["B-BUYER_NAME", "I-BUYER_NAME", "B-BUYER_ADDRESS"]
    assert [(e.type, e.words) for e in group_entities(fixed, block)] == [
        ("BUYER_NAME", [0, 1]), ("BUYER_ADDRESS", [2, 3, 4, 5, 6])]
    # "[Keltenie] NV": the first word of the name read as the address
    assert whole_name_lines(["B-SUPPLIER_ADDRESS", "B-SUPPLIER_NAME", "B-SUPPLIER_ADDRESS", "I-SUPPLIER_ADDRESS"],
                            block[:4])[:3] == ["B-SUPPLIER_NAME", "I-SUPPLIER_NAME", "B-SUPPLIER_ADDRESS"]
    # left alone: a one-line "name, street, city" address, and another party's address beside the name
    one_line = ["B-SUPPLIER_NAME", "B-SUPPLIER_ADDRESS", "O"]
    assert whole_name_lines(one_line, block[:3]) == one_line
    other_party = ["B-BUYER_NAME", "B-SUPPLIER_ADDRESS", "I-SUPPLIER_ADDRESS", "I-SUPPLIER_ADDRESS"]
    assert whole_name_lines(other_party, block[:4]) == other_party


def test_an_amount_or_number_that_stops_inside_its_printed_value_is_completed() -> None:
    from invoicegen.extract.decode import complete_values

    line = [(10 + 60 * i, 10, 60 + 60 * i, 20) for i in range(4)]
    # "12 638,41 €" with a space between digit groups; the model tagged "12"
    assert complete_values(["B-AMOUNT_DUE", "O", "O", "O"], ["12", "638,41", "€", "Paid"], line) == [
        "B-AMOUNT_DUE", "I-AMOUNT_DUE", "I-AMOUNT_DUE", "O"]
    # a lone currency mark takes the number after it
    assert complete_values(["B-TOTAL_AMOUNT", "O"], ["US$", "1,250.00"], line[:2]) == ["B-TOTAL_AMOUNT", "I-TOTAL_AMOUNT"]
    # a complete amount does not take the next number, nor a word in another column
    assert complete_values(["B-SUBTOTAL", "O"], ["12,50", "300"], line[:2]) == ["B-SUBTOTAL", "O"]
    far = [(10, 10, 40, 20), (300, 10, 340, 20)]
    assert complete_values(["B-SUBTOTAL", "O"], ["12", "638,41"], far) == ["B-SUBTOTAL", "O"]
    # a document number cut after a separator or a short prefix; a caption before it is no prefix
    assert complete_values(["B-PO_NUMBER", "O"], ["XDKE/WZZH/", "723244"], line[:2]) == ["B-PO_NUMBER", "I-PO_NUMBER"]
    assert complete_values(["B-PO_NUMBER", "O"], ["OA", "0549/2024"], line[:2]) == ["B-PO_NUMBER", "I-PO_NUMBER"]
    assert complete_values(["B-INVOICE_NUMBER", "O"], ["INV-7", "Date"], line[:2]) == ["B-INVOICE_NUMBER", "O"]


def test_names_vat_numbers_and_phones_that_stop_early_are_completed() -> None:
    from invoicegen.extract.decode import complete_values

    line = [(10 + 60 * i, 10, 60 + 60 * i, 20) for i in range(4)]
    name = ["B-BUYER_NAME", "I-BUYER_NAME", "O", "O"]
    assert complete_values(name, ["Friends", "of", "Jeffrey", "Rodgers"], line) == [
        "B-BUYER_NAME", "I-BUYER_NAME", "I-BUYER_NAME", "I-BUYER_NAME"]
    # a name ending in a separator is followed by its address; a caption is no name
    assert complete_values(name, ["ACME", "GmbH,", "Main", "St"], line) == name
    assert complete_values(name[:3], ["ACME", "GmbH", "Invoice:"], line[:3]) == name[:3]
    # VAT numbers take digit groups up to their country's length, not beyond
    vat = ["B-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID", "O", "O"]
    assert complete_values(vat, ["FR84", "549", "250", "496"], line) == [
        "B-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID", "I-SUPPLIER_TAX_ID"]
    assert complete_values(["B-SUPPLIER_TAX_ID", "O"], ["DE123456789", "2024"], line[:2]) == ["B-SUPPLIER_TAX_ID", "O"]
    # a lone currency mark takes the number before it
    assert complete_values(["O", "B-DISCOUNT"], ["232,89", "€"], line[:2]) == ["B-DISCOUNT", "I-DISCOUNT"]
    assert complete_values(["B-SUPPLIER_PHONE", "O", "O"], ["09-6064", "6611", "GST"], line[:3]) == [
        "B-SUPPLIER_PHONE", "I-SUPPLIER_PHONE", "O"]


def test_a_party_name_gets_the_untagged_words_that_start_it_but_no_caption() -> None:
    """"TEO HENG [STATIONERY & BOOKS]": the model tagged the end of the name. The words before it
    on its line join it, not a caption ("Advertiser Name"), and the confidence stays the model's."""
    from invoicegen.extract.decode import PagePrediction, entity_candidates
    from invoicegen.schema import NER_LABELS

    def names(words: list[str], tagged: list[str]) -> list[tuple[str, float]]:
        ner = np.zeros((len(words), len(NER_LABELS)))
        for i, tag in enumerate(tagged):
            ner[i, NER_LABELS.index(tag)] = 0.9
        boxes = [(10.0 + 60 * i, 10.0, 60.0 + 60 * i, 20.0) for i in range(len(words))]
        empty = np.zeros((len(words), 1))
        pred = PagePrediction(0, words, boxes, ner, empty, empty)
        return [(c.text, round(c.confidence, 2)) for c in entity_candidates(pred) if c.entity == "SUPPLIER_NAME"]

    shop = ["Receipt", "TEO", "HENG", "STATIONERY", "&", "BOOKS"]
    tagged = ["O", "O", "O", "B-SUPPLIER_NAME", "I-SUPPLIER_NAME", "I-SUPPLIER_NAME"]
    assert names(shop, tagged) == [("TEO HENG STATIONERY & BOOKS", 0.9)]  # "Receipt" is a caption
    form = ["Advertiser", "Name", "Erin", "Perry", "for", "Senate"]
    assert names(form, ["O", "O", "O", "B-SUPPLIER_NAME", "I-SUPPLIER_NAME", "I-SUPPLIER_NAME"]) == [
        ("Erin Perry for Senate", 0.9)]
    assert names(["Total:", "ACME", "Ltd"], ["O", "B-SUPPLIER_NAME", "I-SUPPLIER_NAME"]) == [("ACME Ltd", 0.9)]


def test_a_value_that_wraps_to_the_start_of_the_next_line_stays_one_value() -> None:
    # a narrow receipt: "VAT No.: GB 256 3663" and "44" at the left margin of the next line
    boxes = [(104, 90, 112, 97), (116, 90, 129, 97), (133, 90, 150, 97), (11, 99, 20, 106)]
    tags = ["B-SUPPLIER_TAX_ID"] + ["I-SUPPLIER_TAX_ID"] * 3
    assert [e.words for e in group_entities(tags, boxes)] == [[0, 1, 2, 3]]
    far_below = boxes[:3] + [(11, 140, 20, 147)]
    assert [e.words for e in group_entities(tags, far_below)] == [[0, 1, 2], [3]]


def test_a_word_that_continues_the_rows_item_value_joins_the_row() -> None:
    # "... assorted (pack of" in the row, "12)" left outside the table but tagged as the description's continuation
    words = [(10, 10, 40, 20), (45, 10, 60, 20), (65, 10, 80, 20), (200, 10, 230, 20)]
    ner = ["B-ITEM_DESCRIPTION", "I-ITEM_DESCRIPTION", "I-ITEM_DESCRIPTION", "O"]
    assert snap_row_starts(["ROW_B", "ROW_I", "O", "O"], words, ner) == ["ROW_B", "ROW_I", "ROW_I", "O"]
