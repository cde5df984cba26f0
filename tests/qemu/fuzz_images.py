#!/usr/bin/env python3
"""Makes images with QEMU's own image fuzzer (tests/image-fuzzer), as its runner.py makes them:
per seed, a backing file of a random format made by qemu-img create, then a fuzzed qcow2 image
naming it. Half the seeds fuzz every structure, half only the L1 and L2 tables.

usage: fuzz_images.py FUZZER_DIR OUT_DIR FIRST_SEED COUNT
Writes OUT_DIR/<seed>/test.img and its backing file; prints one line per image:
seed, what was fuzzed (all|tables), backing format, virtual size (tab-separated).
"""
import os
import random
import subprocess
import sys

fuzzer_dir, out_dir, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, fuzzer_dir)
import qcow2  # noqa: E402  (the fuzzer's generator, found through sys.path)

# The 7.2 generator samples from sets, which Python 3.11 refuses; sampling their sorted elements
# is what it meant (and what later QEMU does).
_sample = random.sample
random.sample = lambda population, k: _sample(
    sorted(population) if isinstance(population, (set, frozenset)) else population, k)

# runner.py's choice of backing formats and sizes.
BACKING_FORMATS = ['raw', 'vmdk', 'vdi', 'qcow2', 'file', 'qed', 'vpc']
TABLES = [['l1_table'], ['l2_tables']]

for seed in range(first, first + count):
    random.seed(seed)
    directory = os.path.join(out_dir, str(seed))
    os.makedirs(directory, exist_ok=True)
    fmt = random.choice(BACKING_FORMATS)
    name = 'backing_img.' + fmt
    size = random.randint(1, 10) * (1 << 20)
    made = subprocess.run(['qemu-img', 'create', '-q', '-f', fmt, name, str(size)],
                          cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if made.returncode != 0:
        fmt, name = 'raw', 'backing_img.raw'
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'raw', name, str(size)],
                       cwd=directory, check=True, stdout=subprocess.DEVNULL)
    config = TABLES if seed % 2 else None
    image_size = qcow2.create_image(os.path.join(directory, 'test.img'), name, fmt, config)
    print('%d\t%s\t%s\t%d' % (seed, 'tables' if config else 'all', fmt, image_size), flush=True)
