"""A minimal Hugging Face Hub protocol server (standard library only) for tests on 127.0.0.1.

It speaks the parts of the protocol that the real `huggingface_hub` client uses to create a repo, upload files
(preupload, LFS batch + PUT, ndjson commit, README yaml validation, branches) and download them
(HEAD / GET /{repo}/resolve/{rev}/{path}). State lives in memory; `corrupt()` truncates a stored file so that
tests can check how clients react to a damaged download.
"""
import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = ('.safetensors', '.bin', '.pth', '.onnx', '.pt')


class HubState:
    def __init__(self):
        self.lock = threading.Lock()
        self.repos: Dict[str, Dict] = {}  # repo_id -> {'private', 'branches': {name: sha}, 'commits': {sha: files}}
        self.blobs: Dict[str, bytes] = {}  # sha256 -> content (LFS store)
        self.requests = []  # (method, path) log

    def files_at(self, repo_id: str, revision: str) -> Optional[Tuple[str, Dict]]:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        sha = repo['branches'].get(revision, revision if revision in repo['commits'] else None)
        if sha is None:
            return None
        return sha, repo['commits'][sha]

    def corrupt(self, repo_id: str, path: str, keep: int = 100) -> None:
        with self.lock:
            for files in self.repos[repo_id]['commits'].values():
                if path in files:
                    content, lfs = files[path]
                    files[path] = (content[:keep], lfs)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    state: HubState = None
    endpoint: str = ''
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):  # keep test output quiet
        pass

    # -- helpers ---------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _send(self, code: int, payload=None, headers: Optional[Dict[str, str]] = None, raw: Optional[bytes] = None,
              head: bool = False):
        data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b'')
        self.send_response(code)
        if raw is None:
            self.send_header('Content-Type', 'application/json')
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, code: int, error_code: str, message: str, head: bool = False):
        self._send(code, {'error': message}, {'X-Error-Code': error_code, 'X-Error-Message': message}, head=head)

    def _authorized(self) -> bool:
        auth = self.headers.get('Authorization', '')
        if not auth.startswith('Bearer ') or len(auth) <= len('Bearer '):
            self._error(401, 'Unauthorized', 'Invalid credentials in Authorization header')
            return False
        return True

    # -- routes ----------------------------------------------------------------------------------------------
    def do_HEAD(self):
        self._resolve(head=True)

    def do_GET(self):
        self._resolve(head=False)

    def _resolve(self, head: bool):
        path = unquote(urlparse(self.path).path)
        self.state.requests.append(('HEAD' if head else 'GET', path))
        parts = path.strip('/').split('/')
        if len(parts) < 5 or parts[2] != 'resolve':
            return self._error(404, 'EntryNotFound', f'no route for {path}', head)
        repo_id, revision, filename = '/'.join(parts[:2]), parts[3], '/'.join(parts[4:])
        if repo_id not in self.state.repos:
            return self._error(404, 'RepoNotFound', f'Repository {repo_id} not found', head)
        found = self.state.files_at(repo_id, revision)
        if found is None:
            return self._error(404, 'RevisionNotFound', f'Revision {revision} not found', head)
        sha, files = found
        if filename not in files:
            return self._error(404, 'EntryNotFound', f'{filename} does not exist at {revision}', head)
        content, lfs = files[filename]
        headers = {'X-Repo-Commit': sha, 'Accept-Ranges': 'bytes'}
        if lfs:
            oid = hashlib.sha256(content).hexdigest() if len(content) else ''
            stored_oid = next((k for k, v in self.state.blobs.items() if v is content), oid)
            headers.update({'X-Linked-Etag': f'"{stored_oid}"', 'X-Linked-Size': str(len(content)),
                            'ETag': f'"{stored_oid}"'})
        else:
            headers['ETag'] = f'"{_sha1(content)}"'
        self._send(200, headers=headers, raw=content, head=head)

    def do_PUT(self):
        path = urlparse(self.path).path
        self.state.requests.append(('PUT', path))
        body = self._body()
        if not path.startswith('/lfs-upload/'):
            return self._error(404, 'NotFound', f'no route for PUT {path}')
        oid = path.rsplit('/', 1)[-1]
        if hashlib.sha256(body).hexdigest() != oid:
            return self._error(400, 'BadRequest', 'sha256 of the uploaded content does not match the oid')
        with self.state.lock:
            self.state.blobs[oid] = body
        self._send(200, {})

    def do_POST(self):
        path = unquote(urlparse(self.path).path)
        self.state.requests.append(('POST', path))
        body = self._body()
        if path == '/api/repos/create':
            return self._create_repo(json.loads(body or b'{}'))
        if path == '/api/validate-yaml':
            return self._send(200, {'errors': [], 'warnings': []})
        if path.endswith('.git/info/lfs/objects/batch'):
            return self._lfs_batch(path[1:-len('.git/info/lfs/objects/batch')], json.loads(body))
        parts = path.strip('/').split('/')
        if len(parts) >= 6 and parts[0] == 'api' and parts[1] == 'models':
            repo_id, action, revision = '/'.join(parts[2:4]), parts[4], '/'.join(parts[5:])
            if repo_id not in self.state.repos:
                return self._error(404, 'RepoNotFound', f'Repository {repo_id} not found')
            if action == 'preupload':
                return self._preupload(json.loads(body))
            if action == 'commit':
                return self._commit(repo_id, revision, body)
            if action == 'branch':
                return self._branch(repo_id, revision, json.loads(body or b'{}'))
        return self._error(404, 'NotFound', f'no route for POST {path}')

    def _create_repo(self, payload):
        if not self._authorized():
            return
        name, org = payload.get('name'), payload.get('organization')
        repo_id = f'{org}/{name}' if org else name
        url = f'{self.endpoint}/{repo_id}'
        with self.state.lock:
            if repo_id in self.state.repos:
                return self._send(409, {'error': 'You already created this model repo', 'url': url},
                                  {'X-Error-Code': 'RepoExists'})
            empty = _sha1(repo_id.encode())
            self.state.repos[repo_id] = {'private': bool(payload.get('private')), 'branches': {'main': empty},
                                         'commits': {empty: {}}}
        self._send(200, {'url': url, 'name': repo_id})

    def _preupload(self, payload):
        files = []
        for f in payload.get('files', []):
            lfs = f['path'].endswith(LFS_SUFFIXES) or f.get('size', 0) > 10 * 2 ** 20
            files.append({'path': f['path'], 'uploadMode': 'lfs' if lfs else 'regular', 'shouldIgnore': False})
        self._send(200, {'files': files, 'commitOid': None})

    def _lfs_batch(self, repo_id, payload):
        if not self._authorized():
            return
        objects = []
        for obj in payload.get('objects', []):
            entry = {'oid': obj['oid'], 'size': obj['size']}
            if obj['oid'] not in self.state.blobs:
                entry['actions'] = {'upload': {'href': f'{self.endpoint}/lfs-upload/{repo_id}/{obj["oid"]}'}}
            objects.append(entry)
        self._send(200, {'transfer': 'basic', 'objects': objects, 'hash_algo': 'sha256'},
                   {'Content-Type': 'application/vnd.git-lfs+json'})

    def _branch(self, repo_id, branch, payload):
        if not self._authorized():
            return
        repo = self.state.repos[repo_id]
        with self.state.lock:
            if branch in repo['branches']:
                return self._error(409, 'BranchExists', f'Branch {branch} already exists')
            start = payload.get('startingPoint') or 'main'
            repo['branches'][branch] = repo['branches'].get(start, start)
        self._send(200, {})

    def _commit(self, repo_id, revision, body):
        if not self._authorized():
            return
        repo = self.state.repos[repo_id]
        with self.state.lock:
            if revision not in repo['branches']:
                return self._error(404, 'RevisionNotFound', f'Revision {revision} not found')
            parent = repo['branches'][revision]
            files = dict(repo['commits'][parent])
            summary = ''
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item['key'], item['value']
                if key == 'header':
                    summary = value.get('summary', '')
                elif key == 'file':
                    files[value['path']] = (base64.b64decode(value['content']), False)
                elif key == 'lfsFile':
                    blob = self.state.blobs.get(value['oid'])
                    if blob is None:
                        return self._error(400, 'BadRequest', f'LFS object {value["oid"]} was never uploaded')
                    files[value['path']] = (blob, True)
                elif key == 'deletedFile':
                    files.pop(value['path'], None)
            sha = _sha1((parent + summary + json.dumps(sorted(files))).encode() + b''.join(
                c for c, _ in files.values()))
            repo['commits'][sha] = files
            repo['branches'][revision] = sha
        self._send(200, {'commitUrl': f'{self.endpoint}/{repo_id}/commit/{sha}', 'commitOid': sha,
                         'pullRequestUrl': None})


class HubServer:
    """Start with `with HubServer() as hub:`; `hub.endpoint` is the URL to put in HF_ENDPOINT."""

    def __init__(self):
        self.state = HubState()
        handler = type('BoundHandler', (Handler,), {'state': self.state})
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.endpoint = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        handler.endpoint = self.endpoint
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
