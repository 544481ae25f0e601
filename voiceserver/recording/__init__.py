"""Recording: the rules administrators write, their hot reload, the recorder, the service
around it, WAV files and the call database."""
