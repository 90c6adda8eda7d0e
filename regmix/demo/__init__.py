"""`regmix-demo`: the whole RegMix loop on the embedded synthetic corpus, on CPU."""
