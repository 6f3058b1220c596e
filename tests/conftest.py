"""Suite-wide test settings.

The suite is dominated by XLA compile time on small CPUs. LLVM's -O0 backend
compiles the IK and train steps several times faster (48 s -> 6.5 s for a
train step on 2 cores) and leaves the numbers the tests check unchanged. Set
here, before any test module imports JAX, so it applies to every test the same
way; an explicit XLA_FLAGS setting from the caller wins.
"""

import os

if '--xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_backend_optimization_level=0').strip()
