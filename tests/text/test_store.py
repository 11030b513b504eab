"""tokens.npz on disk (text/store.py, npzfile.py): ids in the smallest unsigned type that holds their
vocabulary, arrays mapped from the file instead of read, and the checks of a crafted file before
anything is mapped."""

import os
import zipfile

import numpy as np
import pytest

from rnncli.errors import RnncliError
from rnncli.text.encode import tokenize
from rnncli.text.store import compact, load_dataset, save_dataset

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")


@pytest.mark.parametrize("size,dtype", [(2, np.uint8), (256, np.uint8), (257, np.uint16), (65_536, np.uint16),
                                        (65_537, np.uint32), (2**32, np.uint32)])
def test_ids_take_the_smallest_unsigned_type_that_holds_the_vocabulary(size, dtype):
    ids = np.array([0, size - 1], np.int64)
    out = compact(ids, size)
    assert out.dtype == dtype and out.tolist() == [0, size - 1]


def test_more_names_than_uint32_holds_are_refused():
    with pytest.raises(RnncliError, match="more than 2\\^32"):
        compact(np.zeros(2, np.int64), 2**32 + 1)


@pytest.mark.parametrize("name,options", [("corpus.txt", {}), ("corpus.txt", {"level": "word"}),
                                          ("ner.conll", {}), ("dates.tsv", {"level": "char"}),
                                          ("reviews.tsv", {})])
def test_a_saved_data_set_loads_mapped_and_equal(tmp_path, name, options):
    ds = tokenize([os.path.join(SAMPLES, name)], **options)
    path = str(tmp_path / "t.npz")
    save_dataset(path, ds)
    back = load_dataset(path)
    assert isinstance(back.train.ids, np.memmap) and not back.train.ids.flags.writeable
    for split, again in ((ds.train, back.train), (ds.valid, back.valid)):
        for field in ("ids", "offsets", "labels", "tags", "chars", "char_offsets", "targets", "target_offsets"):
            a, b = getattr(split, field), getattr(again, field)
            assert (a is None) == (b is None), field
            if a is not None:
                assert np.array_equal(a, b), field
    assert back.train.ids.dtype == (np.uint8 if len(ds.meta["vocab"]) <= 256 else np.uint16)


def test_a_character_corpus_takes_about_a_byte_a_character(tmp_path):
    text = open(os.path.join(SAMPLES, "corpus.txt"), encoding="utf-8").read()
    path = tmp_path / "t.npz"
    save_dataset(str(path), tokenize([os.path.join(SAMPLES, "corpus.txt")]))
    with zipfile.ZipFile(path) as z:
        ids = sum(i.file_size for i in z.infolist() if i.filename.endswith("_ids.npy"))
    assert ids < 1.01 * len(text) + 256  # a byte a character (and <eos> a paragraph), plus the headers


def test_a_compressed_archive_is_read_and_an_old_int32_one_mapped(tmp_path):
    ds = tokenize([os.path.join(SAMPLES, "reviews.tsv")])
    path = str(tmp_path / "t.npz")
    save_dataset(path, ds)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    assert np.array_equal(load_dataset(str(tmp_path / "c.npz")).train.ids, ds.train.ids)
    arrays["train_ids"] = arrays["train_ids"].astype(np.int32)  # as 538af89 wrote them
    np.savez(tmp_path / "old.npz", **arrays)
    old = load_dataset(str(tmp_path / "old.npz"))
    assert isinstance(old.train.ids, np.memmap) and old.train.ids.dtype == np.int32
    assert np.array_equal(old.train.ids, ds.train.ids)


def test_a_header_claiming_more_than_its_member_holds_is_refused_before_mapping(tmp_path):
    import io

    path = tmp_path / "t.npz"
    save_dataset(str(path), tokenize([os.path.join(SAMPLES, "reviews.tsv")]))
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": (10**13,)})
    members["train_ids.npy"] = member.getvalue() + b"\0" * 64  # claims 10 TB, holds 64 bytes
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(RnncliError, match="declares 10,000,000,000,000 bytes"):
        load_dataset(str(path))
