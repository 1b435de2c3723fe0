"""Running the notebooks: their parameters (``notebook_params``), the Lab they make (``lab``), what a run will cost
(``planning``), one notebook through papermill (``papermill_runs``) and every notebook of a domain
(``reproduce``)."""
