"""Launch the distpose GUI: `python main.py` is the same as `distpose-app`."""

import sys

from distpose_app.gui.app import main

if __name__ == "__main__":
    sys.exit(main())
