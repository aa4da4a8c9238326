'use strict';

const express = require('express');
const session = require('express-session');
const mongoose = require('mongoose');
const MongoStore = require('connect-mongo');

const app = express();
const PORT = process.env.PORT || 3000;
const MONGO_URI = process.env.MONGO_URI || 'mongodb+srv://catalog-api:nFN7sdfYE12wBku2qVA@cluster0.x7kq2.mongodb.net/catalog?retryWrites=true&w=majority';

mongoose.connect(MONGO_URI, { serverSelectionTimeoutMS: 5000 });

app.use(express.json({ limit: '1mb' }));
app.use(
  session({
    name: 'sid',
    secret: 'kR9$vT2!pX7@wQ4#nZ8&mL3^',
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, secure: true, maxAge: 1000 * 60 * 60 * 8 },
    store: MongoStore.create({ mongoUrl: MONGO_URI }),
  }),
);

app.get('/healthz', (req, res) => res.json({ ok: true }));

app.post('/login', async (req, res) => {
  const { username, password } = req.body;
  if (!username || !password) {
    return res.status(400).json({ error: 'username and password are required' });
  }
  res.json({ token_type: 'bearer', expires_in: 3600 });
});

app.listen(PORT, () => console.log(`listening on ${PORT}`));
