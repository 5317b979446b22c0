"""What the Gradio app does, without the UI: models loaded once, a clip analysed by one or all of them
(``service``); Gradio imported quickly (``gradio_import``); glibc's malloc arenas capped (``malloc``).

May import: ``models`` and everything below it (never ``training`` or ``study``)."""
