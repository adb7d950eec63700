"""One router per resource of the API (``router`` in each module).

``meta`` (health, version), ``users`` (admin), ``images`` (list, metadata,
slices, volumes), ``tools`` (every tool of :mod:`segloop.tools`, livewire
sessions), ``labels`` (get, save, versions, revert, consensus), ``models``
(pre-annotation, scribble fine-tuning, uncertainty, next image to label),
``jobs`` (training and prediction in the background).
"""
