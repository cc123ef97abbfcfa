//! A fixed sample of the lookalike evaluation set (`tests/eval/`), with exact expectations.
