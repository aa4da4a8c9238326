import os
from flask import Flask

app = Flask(__name__)
app.config["SECRET_KEY"] = "7d5df063396f23e06356741a5bfd6d44"
app.config["SQLALCHEMY_DATABASE_URI"] = "mysql+pymysql://flask:qRms6z8-tbq2OwvrmfPzLfv@mysql.acme.internal/flaskdb"
app.config["MAIL_PASSWORD"] = os.environ.get("MAIL_PASSWORD")
client_secret = "wkyaa7ppCzG96S4VJHCA7v6e03cgKFrE06k4g0kV"
auth = ("api", "F1ask-Basic!Auth9")
token = request.headers.get("Authorization", "").removeprefix("Bearer ")
password_hash = generate_password_hash(form.password.data)
