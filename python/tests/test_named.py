"""Named indexes inside one database file: create_in, open_in, index_names, delete_index."""

import numpy as np
import pytest

import hnswdb


def test_two_named_indexes_in_one_file(tmp_path):
    path = tmp_path / "app.redb"
    titles = hnswdb.Index.create_in(path, "titles", dim=4, metric="l2")
    bodies = hnswdb.Index.open_or_create_in(path, "bodies", dim=8)
    titles.add([1, 2], np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    bodies.add([1], np.ones((1, 8), dtype=np.float32))
    assert titles.name == "titles" and titles.path is None
    assert hnswdb.index_names(path) == ["bodies", "titles"]
    assert titles.search(np.array([0.9, 0.1, 0, 0]), k=1)[0][0] == 1
    with pytest.raises(hnswdb.InUseError):
        hnswdb.Index.open_in(path, "titles")
    with pytest.raises(hnswdb.InUseError):
        hnswdb.delete_index(path, "titles")
    with pytest.raises(hnswdb.NotInSharedDatabaseError):
        titles.compact()
    with titles.write() as tx:
        tx.remove(2)
    titles.close()
    bodies.close()

    again = hnswdb.Index.open_in(path, "titles")
    assert len(again) == 1 and again.options["metric"] == "l2"
    again.verify()
    again.close()
    assert hnswdb.delete_index(path, "titles") is True
    assert hnswdb.delete_index(path, "titles") is False
    assert hnswdb.index_names(path) == ["bodies"]


def test_named_index_errors(tmp_path):
    path = tmp_path / "app.redb"
    with pytest.raises(hnswdb.NotFoundError):
        hnswdb.Index.open_in(path, "missing")
    with pytest.raises(FileNotFoundError):
        hnswdb.index_names(path)
    with pytest.raises(hnswdb.InvalidNameError) as info:
        hnswdb.Index.create_in(path, "no spaces", dim=4)
    assert isinstance(info.value, ValueError)
    idx = hnswdb.Index.create_in(path, "a", dim=4)
    with pytest.raises(hnswdb.InUseError):  # open in this process: one handle per index
        hnswdb.Index.create_in(path, "a", dim=4)
    idx.close()
    with pytest.raises(FileExistsError):
        hnswdb.Index.create_in(path, "a", dim=4)
    with pytest.raises(hnswdb.NotFoundError):
        hnswdb.Index.open_in(path, "b")
    with pytest.raises(hnswdb.OptionsMismatchError):
        hnswdb.Index.open_or_create_in(path, "a", dim=5)
