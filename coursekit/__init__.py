"""The tooling that builds, checks and serves VAE Loss Lab; students never need to read it (they read
``vaeutils``, which never imports this package).

    python -m coursekit check notebooks       # each unit against the unit shape (time, cells, exercises, links)
    python -m coursekit student               # student copies in build/student (nbgrader's preprocessors)
    python -m coursekit slides                # one reveal.js deck per unit in build/slides
    python -m coursekit execute               # every notebook run once into build/executed (reused)
    python -m coursekit course                # the executed course as a Jupyter Book in build/site
    python -m coursekit strip FILES           # clear outputs before a commit
    python -m coursekit app                   # the β explorer dashboard (Voila)
    python -m coursekit models                # every model of the course, trained once into a shared folder
    python -m coursekit hub                   # a trial class server (JupyterHub)
    python -m coursekit zh update|build|check # the Chinese edition: notebooks/zh/ from the catalogs in i18n/zh/

Modules: ``paths`` (where things are), ``notebooks`` (read, strip, run), ``check`` (the unit shape),
``executed`` (the course run once, shared by the site and the decks), ``student`` (student copies),
``slides`` (decks), ``course`` and ``site`` (the executed course as a Jupyter Book site),
``app`` (Voila), ``models`` (``make models``), ``hub`` and ``hubtools`` (the class server and its tests),
``browser`` (Chromium and servers for the browser tests and benchmarks), ``sizing`` (a class's machines),
``i18n`` (the Chinese edition: gettext catalogs, ``make zh``).
"""
