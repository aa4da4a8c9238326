import { initializeApp } from 'firebase/app';
import { getAuth } from 'firebase/auth';

const firebaseConfig = {
  apiKey: 'AIzaxql5ZgBLqCRHlFAqxiOjG_yx1KHpOZvOvwz',
  authDomain: 'acme-loyalty.firebaseapp.com',
  projectId: 'acme-loyalty',
  storageBucket: 'acme-loyalty.appspot.com',
  messagingSenderId: '418265309174',
  appId: '1:418265309174:web:7f3c2a9e4b1d6c8a5e2f90',
  measurementId: 'G-8XK2PL4QZN',
};

export const app = initializeApp(firebaseConfig);
export const auth = getAuth(app);
