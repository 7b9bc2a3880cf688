#!/usr/bin/python3
"""Writes the reference .npy files of test/npy.test.ts with numpy itself (np.save and, for the
version 2.0 and 3.0 headers the reader also accepts, numpy.lib.format.write_array).

CI has no numpy: the files are committed. Run with Debian's python3 (it has numpy):
    /usr/bin/python3 scripts/make-npy-fixtures.py
"""
import os
import numpy as np
from numpy.lib import format as npformat

out = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'npy')
os.makedirs(out, exist_ok=True)

arrays = {
    'scalar': np.array(1.5, dtype='<f4'),
    'vector': np.array([1, -2.5, 3e-8], dtype='<f4'),
    'chw': (np.arange(20, dtype='<f4') / 7 - 1).reshape(1, 4, 5),
    'special': np.array([-0.0, np.inf, -np.inf, np.nan, 1e-45, np.finfo(np.float32).max, np.finfo(np.float32).tiny, -1 / 3, 0, 1, 2, 255],
                        dtype='<f4').reshape(3, 2, 2),
    'empty': np.zeros((0, 3), dtype='<f4'),
    # rank 24: a header longer than 64 bytes, padded to 128
    'rank24': np.full((1,) * 23 + (2,), 0.25, dtype='<f4'),
}
for name, a in arrays.items():
    np.save(os.path.join(out, f'{name}.npy'), a)
    # the values the test expects, as text a TypeScript test can read without a .npy reader
    with open(os.path.join(out, f'{name}.json'), 'w') as f:
        f.write('{"shape": %s, "values": [%s]}\n' % (list(a.shape), ', '.join(
            '"nan"' if np.isnan(v) else '"inf"' if v == np.inf else '"-inf"' if v == -np.inf else
            '"-0"' if v == 0 and np.signbit(v) else repr(float(v)) for v in a.ravel())))

for version in [(2, 0), (3, 0)]:
    with open(os.path.join(out, f'chw-v{version[0]}.npy'), 'wb') as f:
        npformat.write_array(f, arrays['chw'], version=version)
# float64 and Fortran order: the reader refuses them
np.save(os.path.join(out, 'float64.npy'), np.arange(4, dtype='<f8'))
np.save(os.path.join(out, 'fortran.npy'), np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
print('wrote', sorted(os.listdir(out)))
