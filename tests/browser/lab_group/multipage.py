"""
ScriptsManager Metadata:
@description: An ordinary multi-page Flask app (forms, sessions, redirects, url_for, JSON,
    downloads, streaming) that must work unchanged on its session host
@required_level: operator
@category: tests
@flask_port: auto
"""

import io
import time

from flask import (
    Response,
    jsonify,
    redirect,
    render_template_string,
    request,
    send_file,
    session,
    stream_with_context,
    url_for,
)

app.secret_key = "multipage-test-only"  # noqa: F821 - the runner injects `app`

LAYOUT = """<!doctype html><html><head><title>{{ title }}</title>
<link rel="stylesheet" href="{{ url_for('style') }}"></head><body>
<nav><a id="home" href="{{ url_for('home') }}">Home</a>
<a id="to-form" href="{{ url_for('form') }}">Form</a></nav>
<h1 id="title">{{ title }}</h1>{{ body|safe }}</body></html>"""


@app.route("/")  # noqa: F821
def home():
    session["visits"] = session.get("visits", 0) + 1
    body = f'<p id="visits">{session["visits"]}</p><p id="name">{session.get("name", "")}</p>'
    body += f'<a id="download" href="{url_for("download")}">report</a>'
    return render_template_string(LAYOUT, title="Home", body=body)


@app.route("/style.css")  # noqa: F821
def style():
    return Response("h1 { color: rgb(1, 2, 3); }", mimetype="text/css")


@app.route("/form", methods=["GET", "POST"])  # noqa: F821
def form():
    if request.method == "POST":
        session["name"] = request.form.get("name", "")
        return redirect(url_for("thanks"))
    body = f'<form method="post" action="{url_for("form")}"><input id="name" name="name">'
    body += '<button id="send" type="submit">Send</button></form>'
    return render_template_string(LAYOUT, title="Form", body=body)


@app.route("/thanks")  # noqa: F821
def thanks():
    return render_template_string(LAYOUT, title=f"Thanks, {session.get('name', '')}", body="")


@app.route("/api/sum", methods=["POST"])  # noqa: F821
def total():
    numbers = (request.get_json(silent=True) or {}).get("numbers", [])
    return jsonify({"sum": sum(numbers)})


@app.route("/download")  # noqa: F821
def download():
    data = io.BytesIO(b"a,b\n1,2\n")
    return send_file(data, mimetype="text/csv", as_attachment=True, download_name="report.csv")


@app.route("/stream")  # noqa: F821
def stream():
    def parts():
        for number in range(3):
            yield f"part {number}\n"
            time.sleep(0.1)

    return Response(stream_with_context(parts()), mimetype="text/plain")
