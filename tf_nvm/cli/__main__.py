"""``python -m tf_nvm.cli``: the same as ``tf-nvm``."""

import sys

from tf_nvm.cli import main

sys.exit(main())
