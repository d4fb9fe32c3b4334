"""The scoring API (`ifd serve`): the champion answers, the challenger scores in shadow."""
