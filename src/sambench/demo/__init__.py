"""The demo on bundled real data: the MNI152 source it writes (``source``) and the whole pipeline it runs (``run``)."""
