"""The online services: router (public gateway), base_model, modifier_worker, fallback."""
