"""Max |a - b| / max |b| per output of two released.npz runs (b: the reference)."""
import sys
import numpy as np
a, b = (dict(np.load(f'{d}/released.npz')) for d in sys.argv[1:3])
names = sorted({k.split('/', 1)[1] for k in b if '/' in k and 'logits' not in k})
cases = sorted({k.split('/')[0] for k in b if '/' in k})
print(f"{'output':24s}" + ''.join(f'{c:>22s}' for c in cases))
for n in names:
  row = ''
  for c in cases:
    k = f'{c}/{n}'
    if k in a and k in b:
      x, y = a[k].astype(np.float64), b[k].astype(np.float64)
      d = np.abs(x - y).max()
      row += f'{d:10.1e} /{d / max(np.abs(y).max(), 1e-12):8.1e}   '
  print(f'{n:24s}' + row)
