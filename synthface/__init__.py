"""synthface: synthetic face datasets from a DCGAN, labelled with dlib.

Nothing heavy is imported here: `synthface --help` must not pay for torch or dlib.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # `from synthface import FaceLandmarks` imports torch then, not at `import synthface`
    if name == "FaceLandmarks":
        from synthface.formats.torchdata import FaceLandmarks

        return FaceLandmarks
    raise AttributeError(f"module 'synthface' has no attribute {name!r}")
