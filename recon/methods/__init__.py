"""One-call reconstruction methods, one module per paper (classical.py: FBP, Tikhonov, TV)."""
