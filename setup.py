from setuptools import setup

setup(cffi_modules=["pyalloc/_build.py:ffibuilder"])
