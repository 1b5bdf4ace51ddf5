"""Runs at every start of the board (copied to ``/main.py``): the node named by ``/config.json``."""

from campusnode.board import runtime

runtime.main()
