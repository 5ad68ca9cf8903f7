"""Moved to lab/realtools.py (bench/ and tests import it from there). This name stays only for
tests/realcplab.py, which another branch is editing: at merge its import becomes lab.realtools and
this file goes."""

from lab.realtools import path_of as path_of
