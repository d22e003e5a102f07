-- Official templates. file_structure = {"files": [{"path", "content"}]};
-- run_config = {"install": command or null, "dev": command, "port": number, "image": runtime family}.

INSERT INTO project_templates (id, name, description, category, tags, tech_stack, file_structure, run_config,
  is_public, is_featured, is_official, published_at)
VALUES
('node-http', 'Node.js HTTP (zero dependencies)',
 'A plain Node.js HTTP server that serves index.html. No install step, so it starts instantly.',
 'web-app', ARRAY['node', 'javascript', 'starter', 'zero-deps'],
 '{"architecture": "monolithic", "backend": {"language": "javascript", "framework": "node:http", "isBaaS": false}, "frontend": {"framework": "html", "cssFrameworks": [], "buildTool": "none"}, "database": [], "integrations": {"apis": [], "packages": []}}',
 jsonb_build_object('files', jsonb_build_array(
   jsonb_build_object('path', 'package.json', 'content', $f${
  "name": "node-http-app",
  "version": "1.0.0",
  "private": true,
  "type": "module",
  "scripts": {
    "start": "node server.js",
    "dev": "node --watch server.js"
  }
}
$f$),
   jsonb_build_object('path', 'server.js', 'content', $f$import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';

const port = Number(process.env.PORT ?? 3000);
const root = new URL('.', import.meta.url).pathname;
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml' };

createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const file = url.pathname === '/' ? 'index.html' : normalize(url.pathname).replace(/^([/\\])+/, '');
  if (file.startsWith('..')) { res.writeHead(400).end('bad path'); return; }
  try {
    const body = await readFile(join(root, file));
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }
}).listen(port, '0.0.0.0', () => console.log(`listening on http://localhost:${port}`));
$f$),
   jsonb_build_object('path', 'index.html', 'content', $f$<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Hello from Vaporform</title>
    <link rel="stylesheet" href="style.css" />
  </head>
  <body>
    <main>
      <h1>Hello from Vaporform</h1>
      <p>Edit <code>index.html</code> and save: the preview updates.</p>
    </main>
  </body>
</html>
$f$),
   jsonb_build_object('path', 'style.css', 'content', $f$body { font-family: system-ui, sans-serif; margin: 0; display: grid; place-items: center; min-height: 100vh; background: #0f172a; color: #e2e8f0; }
code { background: #1e293b; padding: 0.1em 0.3em; border-radius: 4px; }
$f$)
 )),
 '{"install": null, "dev": "node server.js", "port": 3000, "image": "node"}',
 true, true, true, now()),

('react-vite-pwa', 'React + Vite PWA',
 'A React single-page app built with Vite, with a web app manifest and a service worker so it installs and works offline.',
 'web-app', ARRAY['react', 'vite', 'pwa', 'javascript'],
 '{"architecture": "pwa", "backend": {"language": "none", "framework": "none", "isBaaS": false}, "frontend": {"framework": "react", "cssFrameworks": [], "buildTool": "vite"}, "database": [], "integrations": {"apis": [], "packages": ["react", "react-dom", "vite"]}}',
 jsonb_build_object('files', jsonb_build_array(
   jsonb_build_object('path', 'package.json', 'content', $f${
  "name": "react-vite-pwa",
  "version": "1.0.0",
  "private": true,
  "type": "module",
  "scripts": {
    "dev": "vite --host 0.0.0.0 --port ${PORT:-5173}",
    "build": "vite build",
    "preview": "vite preview --host 0.0.0.0"
  },
  "dependencies": {
    "react": "^19.0.0",
    "react-dom": "^19.0.0"
  },
  "devDependencies": {
    "vite": "^7.0.0"
  }
}
$f$),
   jsonb_build_object('path', 'index.html', 'content', $f$<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="theme-color" content="#0f172a" />
    <link rel="manifest" href="/manifest.webmanifest" />
    <title>React PWA</title>
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/src/main.js"></script>
  </body>
</html>
$f$),
   jsonb_build_object('path', 'src/main.js', 'content', $f$import { createElement as h, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.js';

createRoot(document.getElementById('root')).render(h(StrictMode, null, h(App)));

if ('serviceWorker' in navigator && import.meta.env.PROD) {
  navigator.serviceWorker.register('/sw.js');
}
$f$),
   jsonb_build_object('path', 'src/app.js', 'content', $f$import { createElement as h, useState } from 'react';

export function App() {
  const [count, setCount] = useState(0);
  return h('main', { style: { fontFamily: 'system-ui', padding: 32 } },
    h('h1', null, 'React + Vite PWA'),
    h('button', { onClick: () => setCount((c) => c + 1) }, `Clicked ${count} times`),
  );
}
$f$),
   jsonb_build_object('path', 'public/manifest.webmanifest', 'content', $f${
  "name": "React PWA",
  "short_name": "PWA",
  "start_url": "/",
  "display": "standalone",
  "background_color": "#0f172a",
  "theme_color": "#0f172a",
  "icons": []
}
$f$),
   jsonb_build_object('path', 'public/sw.js', 'content', $f$const CACHE = 'app-v1';
self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(['/', '/index.html'])));
});
self.addEventListener('fetch', (event) => {
  event.respondWith(caches.match(event.request).then((hit) => hit ?? fetch(event.request)));
});
$f$)
 )),
 '{"install": "npm install", "dev": "npm run dev", "port": 5173, "image": "node"}',
 true, true, true, now()),

('hono-api', 'Hono API',
 'A JSON API on Hono and @hono/node-server, with a health route and an example resource.',
 'api', ARRAY['hono', 'api', 'typescript', 'node'],
 '{"architecture": "microservices", "backend": {"language": "javascript", "framework": "hono", "isBaaS": false}, "frontend": {"framework": "none", "cssFrameworks": [], "buildTool": "none"}, "database": [], "integrations": {"apis": [], "packages": ["hono", "@hono/node-server"]}}',
 jsonb_build_object('files', jsonb_build_array(
   jsonb_build_object('path', 'package.json', 'content', $f${
  "name": "hono-api",
  "version": "1.0.0",
  "private": true,
  "type": "module",
  "scripts": {
    "dev": "node --watch src/index.js",
    "start": "node src/index.js"
  },
  "dependencies": {
    "hono": "^4.6.0",
    "@hono/node-server": "^1.13.0"
  }
}
$f$),
   jsonb_build_object('path', 'src/index.js', 'content', $f$import { Hono } from 'hono';
import { serve } from '@hono/node-server';

const app = new Hono();
const todos = [{ id: 1, title: 'Try Vaporform', done: false }];

app.get('/', (c) => c.json({ name: 'hono-api', routes: ['/health', '/todos'] }));
app.get('/health', (c) => c.json({ ok: true }));
app.get('/todos', (c) => c.json({ todos }));
app.post('/todos', async (c) => {
  const { title } = await c.req.json();
  if (typeof title !== 'string' || !title) return c.json({ error: 'title is required' }, 400);
  const todo = { id: todos.length + 1, title, done: false };
  todos.push(todo);
  return c.json({ todo }, 201);
});

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '0.0.0.0' });
$f$)
 )),
 '{"install": "npm install", "dev": "npm run dev", "port": 3000, "image": "node"}',
 true, false, true, now()),

('express-react', 'Express + React',
 'An Express server with a JSON API that also serves a React front end through Vite in middleware mode.',
 'web-app', ARRAY['express', 'react', 'vite', 'fullstack'],
 '{"architecture": "monolithic", "backend": {"language": "javascript", "framework": "express", "isBaaS": false}, "frontend": {"framework": "react", "cssFrameworks": [], "buildTool": "vite"}, "database": [], "integrations": {"apis": [], "packages": ["express", "react", "react-dom", "vite"]}}',
 jsonb_build_object('files', jsonb_build_array(
   jsonb_build_object('path', 'package.json', 'content', $f${
  "name": "express-react",
  "version": "1.0.0",
  "private": true,
  "type": "module",
  "scripts": {
    "dev": "node server.js",
    "build": "vite build",
    "start": "NODE_ENV=production node server.js"
  },
  "dependencies": {
    "express": "^4.21.0",
    "react": "^19.0.0",
    "react-dom": "^19.0.0"
  },
  "devDependencies": {
    "vite": "^7.0.0"
  }
}
$f$),
   jsonb_build_object('path', 'server.js', 'content', $f$import express from 'express';

const app = express();
app.use(express.json());
app.get('/api/hello', (_req, res) => res.json({ message: 'Hello from Express' }));

if (process.env.NODE_ENV === 'production') {
  app.use(express.static('dist'));
} else {
  const { createServer } = await import('vite');
  const vite = await createServer({ server: { middlewareMode: true }, appType: 'spa' });
  app.use(vite.middlewares);
}

const port = Number(process.env.PORT ?? 3000);
app.listen(port, '0.0.0.0', () => console.log(`listening on http://localhost:${port}`));
$f$),
   jsonb_build_object('path', 'index.html', 'content', $f$<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Express + React</title>
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/src/main.js"></script>
  </body>
</html>
$f$),
   jsonb_build_object('path', 'src/main.js', 'content', $f$import { createElement as h, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

function App() {
  const [message, setMessage] = useState('…');
  useEffect(() => {
    fetch('/api/hello').then((r) => r.json()).then((d) => setMessage(d.message));
  }, []);
  return h('main', { style: { fontFamily: 'system-ui', padding: 32 } }, h('h1', null, message));
}

createRoot(document.getElementById('root')).render(h(App));
$f$)
 )),
 '{"install": "npm install", "dev": "npm run dev", "port": 3000, "image": "node"}',
 true, false, true, now()),

('python-fastapi', 'Python FastAPI',
 'A FastAPI service with automatic OpenAPI docs, served by uvicorn with reload.',
 'api', ARRAY['python', 'fastapi', 'api'],
 '{"architecture": "microservices", "backend": {"language": "python", "framework": "fastapi", "isBaaS": false}, "frontend": {"framework": "none", "cssFrameworks": [], "buildTool": "none"}, "database": [], "integrations": {"apis": [], "packages": ["fastapi", "uvicorn"]}}',
 jsonb_build_object('files', jsonb_build_array(
   jsonb_build_object('path', 'requirements.txt', 'content', $f$fastapi>=0.115
uvicorn[standard]>=0.30
$f$),
   jsonb_build_object('path', 'main.py', 'content', $f$from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="FastAPI on Vaporform")


class Item(BaseModel):
    name: str
    price: float


items: list[Item] = []


@app.get("/")
def root() -> dict:
    return {"message": "Hello from FastAPI", "docs": "/docs"}


@app.get("/items")
def list_items() -> list[Item]:
    return items


@app.post("/items", status_code=201)
def create_item(item: Item) -> Item:
    items.append(item)
    return item
$f$)
 )),
 '{"install": "pip install --user -r requirements.txt", "dev": "python -m uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000} --reload", "port": 8000, "image": "python"}',
 true, false, true, now()),

('go-http', 'Go net/http',
 'A Go web service on the standard library only: JSON routes and graceful shutdown.',
 'api', ARRAY['go', 'api', 'zero-deps'],
 '{"architecture": "microservices", "backend": {"language": "go", "framework": "net/http", "isBaaS": false}, "frontend": {"framework": "none", "cssFrameworks": [], "buildTool": "none"}, "database": [], "integrations": {"apis": [], "packages": []}}',
 jsonb_build_object('files', jsonb_build_array(
   jsonb_build_object('path', 'go.mod', 'content', $f$module example.com/app

go 1.22
$f$),
   jsonb_build_object('path', 'main.go', 'content', $f$package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"message": "Hello from Go"})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Addr: "0.0.0.0:" + port, Handler: mux}
	go func() {
		log.Printf("listening on :%s", port)
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}
$f$)
 )),
 '{"install": null, "dev": "go run .", "port": 8080, "image": "go"}',
 true, false, true, now());
