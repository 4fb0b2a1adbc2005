"""A variable's HDF5 chunks compressed on every core, byte for byte as HDF5's deflate filter stores them.

HDF5's deflate filter runs inside h5py's calls, which h5py serialises (one HDF5
call at a time in a process): a compressed posterior.nc spends most of its write
compressing on one core. Python's `zlib.compress` releases the GIL and makes the
same zlib call the filter makes (`compress2` at the dataset's level), so the
chunks are compressed here, in a thread pool started before the file is opened
(it works while the writer makes the file's groups, dimensions and attributes),
and stored with `write_direct_chunk`, in the order and at the size HDF5 would:
edge chunks are full-size, padded with the dataset's fill value, as the filter
pipeline pads them. The file is the same, byte for byte (tests/test_netcdf_writer.py).
The chunk shape, level and fill value are predicted from what the writer asks
h5py for and checked against the created dataset; on any difference the variable
goes through HDF5's own filter instead.
"""

from __future__ import annotations

import itertools
import os
import zlib
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

DEFLATE_LEVEL = 4  # h5py's level for compression="gzip" without compression_opts
DEFLATE = 1  # H5Z_FILTER_DEFLATE
BATCH_BYTES = 256 * 2**10  # chunks per pool task: enough work to outweigh a task's overhead


class Compressed:
    """One variable's chunks, compressed in the pool: (chunk shape, fill value, futures)."""

    def __init__(self, pool: ThreadPoolExecutor, data: np.ndarray, chunks: tuple, fillvalue):
        self.chunks = chunks
        self.fill = np.array(0 if fillvalue is None else fillvalue, dtype=data.dtype)
        offsets = chunk_offsets(data.shape, chunks)
        per_batch = max(1, BATCH_BYTES // (int(np.prod(chunks)) * data.itemsize))
        self._batches = [offsets[i : i + per_batch] for i in range(0, len(offsets), per_batch)]
        self._futures: list[Future] = [
            pool.submit(compress_chunks, data, chunks, self.fill, batch) for batch in self._batches
        ]

    def store(self, h5ds, data: np.ndarray) -> bool:
        """Write the chunks into `h5ds` if it is the dataset they were made for; else False."""
        if not _same_pipeline(h5ds, data, self.chunks, self.fill):
            self.cancel()
            return False
        for batch, future in zip(self._batches, self._futures, strict=True):
            for offset, blob in zip(batch, future.result(), strict=True):
                h5ds.id.write_direct_chunk(offset, blob)
        return True

    def cancel(self) -> None:
        for future in self._futures:
            future.cancel()


def start(pool: ThreadPoolExecutor, data: np.ndarray, fillvalue) -> Compressed | None:
    """Start compressing `data` as h5py would chunk it, or None when HDF5's filter must do it."""
    if data.size == 0 or not data.ndim or not data.dtype.isnative or data.dtype.kind not in "biuf":
        return None
    try:  # private: what h5py picks for chunks=None with compression; else HDF5's filter
        from h5py._hl.filters import guess_chunk
    except ImportError:
        return None
    return Compressed(pool, data, tuple(guess_chunk(data.shape, None, data.itemsize)), fillvalue)


def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="netcdf-chunks")


def chunk_offsets(shape: tuple, chunks: tuple) -> list[tuple]:
    """Every chunk's first index, in C order (the order HDF5 writes a whole dataset's chunks)."""
    return list(itertools.product(*(range(0, n, c) for n, c in zip(shape, chunks, strict=True))))


def compress_chunks(data: np.ndarray, chunks: tuple, fill: np.ndarray, offsets) -> list[bytes]:
    """Each chunk at `offsets`, padded to full size with `fill`, deflated as the filter does."""
    blobs = []
    for offset in offsets:
        part = data[tuple(slice(o, o + c) for o, c in zip(offset, chunks, strict=True))]
        if part.shape != chunks:  # an edge chunk: stored full-size, the rest fill value
            padded = np.full(chunks, fill, dtype=data.dtype)
            padded[tuple(slice(0, n) for n in part.shape)] = part
            part = padded
        blobs.append(zlib.compress(np.ascontiguousarray(part), DEFLATE_LEVEL))
    return blobs


def filters(h5ds) -> list[tuple]:
    """The dataset's filter pipeline as (filter id, parameters)."""
    plist = h5ds.id.get_create_plist()
    return [tuple(plist.get_filter(i)[::2]) for i in range(plist.get_nfilters())]


def _same_pipeline(h5ds, data: np.ndarray, chunks: tuple, fill: np.ndarray) -> bool:
    return (
        h5ds.dtype == data.dtype
        and h5ds.shape == data.shape
        and h5ds.chunks == chunks
        and filters(h5ds) == [(DEFLATE, (DEFLATE_LEVEL,))]
        and np.array(h5ds.fillvalue, dtype=data.dtype).tobytes() == fill.tobytes()
        and in_c_order(h5ds, chunks)
    )


def in_c_order(h5ds, chunks: tuple) -> bool:
    """Whether HDF5's own write would store the chunks in C order, as `store` does.

    HDF5's filter writes a chunk when its chunk cache lets it go. While the whole
    dataset fits in the cache and no two chunks share a cache slot, that is when the
    dataset is closed, oldest (C order) first; otherwise evictions reorder them. A
    chunk's slot is its chunk coordinates packed into one integer (ceil(log2(chunks
    along the axis)) bits each, axis 0 unpacked) modulo the slot count, so no two
    share one while the largest packed value is below the count.
    """
    counts = [-(-n // c) for n, c in zip(h5ds.shape, chunks, strict=True)]
    packed = counts[0] - 1
    for count in counts[1:]:
        packed = (packed << (count - 1).bit_length()) | (count - 1)
    slots, cache_bytes, _ = h5ds.id.get_access_plist().get_chunk_cache()
    padded = int(np.prod(counts)) * int(np.prod(chunks)) * h5ds.dtype.itemsize
    return packed < slots and padded <= cache_bytes
