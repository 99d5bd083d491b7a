"""Training the domain router (`tandem router train`): labelled data from public sources and hand-labelled
real prompts, the MiniLM export, the heads fitted with scikit-learn, the report. What it writes is
served by `tandem.services.routing`.
"""
