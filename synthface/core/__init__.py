"""What every stage uses: atomic files and the folder lock, image decoding and files,
the output guard, the process pool."""
