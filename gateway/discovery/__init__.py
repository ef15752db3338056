"""Discovery: where the models and their ready endpoints come from."""
