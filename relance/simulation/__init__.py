"""``relance simulate``: scenarios run on Temporal's time-skipping server against a throwaway database."""
